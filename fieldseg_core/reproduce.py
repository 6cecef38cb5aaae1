"""Re-run the papers' experiments and say, for each, whether it reproduced the finding.

Usage::

    python -m fieldseg_core.reproduce --list
    python -m fieldseg_core.reproduce fig5 --out results/
    python -m fieldseg_core.reproduce --all --quick --out results/

Each study ``ID`` writes ``DIR/ID.png`` (a figure), ``DIR/ID.csv`` (the verdict
table) and, for the synthetic studies, ``DIR/ID_runs.csv`` (one row per scene
and setting). Every verdict table has the columns
:data:`fieldseg_core.studies.VERDICT_COLUMNS`: ``study``, ``quantity``,
``paper`` (the paper's value, empty if it gives none), ``ours_mean`` and
``ours_spread`` (standard deviation over ``n_seeds`` scenes or runs),
``reproduced`` (computed from the criteria stated in
:mod:`fieldseg_core.studies` and :mod:`fieldseg_core.training_studies`) and
a one-line ``reason``. ``--all`` also writes ``DIR/summary.csv`` with every
verdict row and prints it as a table.

Studies
-------
``table4``
    Le & Nguyen, Table 4: ideal centroid flows (the displacement divided by
    the cell's largest centroid distance), 200 Euler steps of 1, DBSCAN eps
    1.5 with min_samples 5, AP50 matching, on Ex 1-7; then unit centroid
    flows, heat flows (Cellpose) and EDT flows (Omnipose) on the same scenes.
``fig5``
    Le & Nguyen, Fig. 5: DBSCAN eps 0.5 / 1.5 / 5.0 on the 20-cell stress
    scene after N = 20 Euler steps.
``fig6``
    Le & Nguyen, Fig. 6: mean IoU against N in [0, 200] for eps in
    {0.5, 1, 1.5, 2, 3, 5}, with the N at which the eps 1.5-5 curves settle.
``flows``
    Peters' post-processing on the same scenes: truncated SDF (alpha = 10)
    differentiated with the size-11 Gaussian-smoothed difference kernel and
    left unnormalised, 25 Euler steps of 0.1, DBSCAN eps 2.2 with
    min_samples 15; EDT flows under the same settings for comparison.

plus every entry of :data:`fieldseg_core.training_studies.REPRODUCTIONS`
(models trained on synthetic scenes).

``--quick`` runs every study at a CPU size (fewer scenes and seeds); the
default sizes are the full ones. The integration runs on ``--device``
(default: CUDA when present, else the CPU).

References
----------
.. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 4.1, Table 4, Figs. 5-6.
.. [2] Peters, *Vector fields for instance segmentation*, Sec. 4 and 6.4.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np

from . import studies, training_studies

__all__ = ["STUDIES", "PETERS", "main"]

#: Study id -> one-line description of the synthetic flow studies defined here.
STUDIES = {
    "table4": "Le & Nguyen Table 4: ideal centroid flows on Ex 1-7, then heat and EDT flows",
    "fig5": "Le & Nguyen Fig. 5: DBSCAN eps 0.5/1.5/5 on the 20-cell stress scene at N = 20",
    "fig6": "Le & Nguyen Fig. 6: mean IoU vs Euler iterations 0-200 for six eps values",
    "flows": "Peters' settings: truncated-SDF flows, 25 Euler steps of 0.1, DBSCAN 2.2/15",
}

#: Peters' post-processing (Sec. 6.1 and 6.4): flows ``tsdf_raw`` (truncation
#: 10, kernel 11, no normalisation), Euler, DBSCAN; the numbers are the one copy
#: in :data:`fieldseg_core.training_studies.PETERS_SETTINGS`.
PETERS = {"flow": "tsdf_raw", **{k: training_studies.PETERS_SETTINGS[k]
                                 for k in ("n_iter", "step", "eps", "min_samples")}}

#: Le & Nguyen's pipeline as we read it (Algorithm 1; eps 1.5 from Fig. 5,
#: min_samples 5 = scikit-learn's default, the report gives none).
REPORT = {"flow": "centroid_max", "n_iter": 200, "step": 1.0, "eps": 1.5, "min_samples": 5}

_TABLE4_FLOWS = ("centroid_max", "centroid", "heat", "edt")
_FIG6_EPS = (0.5, 1.0, 1.5, 2.0, 3.0, 5.0)


def _all_studies():
    """Own studies first, then the training studies' registry."""
    out = dict(STUDIES)
    out.update({k: v[0] for k, v in training_studies.REPRODUCTIONS.items()})
    return out


# --------------------------------------------------------------------------
# output helpers
# --------------------------------------------------------------------------

def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return value


def _write_csv(path, rows, fields=None):
    if fields is None:
        fields = []
        for row in rows:
            fields += [k for k in row if k not in fields]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(fields), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in fields})


def _new_figure(ncols, nrows=1, size=(4.2, 3.4)):
    # A bare Figure draws with the Agg canvas on savefig and leaves the
    # pyplot backend of the calling process (e.g. a notebook) untouched.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _seeds(args, quick, full):
    return list(args.seeds) if args.seeds else list(range(quick if args.quick else full))


def _fmt(value):
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3f}"
    return str(value)


def summary_table(rows):
    """Plain-text table of verdict rows: study, quantity, paper, ours (mean +- spread), verdict."""
    lines = [f"{'study':<10} {'quantity':<52} {'paper':>7} {'ours':>17} {'ok':>3}  reason"]
    for r in rows:
        ours = "-" if r.get("ours_mean") is None else \
            f"{_fmt(r['ours_mean'])} +- {_fmt(r.get('ours_spread'))}"
        lines.append(f"{str(r['study']):<10} {str(r['quantity'])[:52]:<52} "
                     f"{_fmt(r.get('paper')):>7} {ours:>17} "
                     f"{'yes' if r['reproduced'] else 'no':>3}  {r.get('reason', '')}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# the studies: each returns (verdict rows, figure, per-run rows)
# --------------------------------------------------------------------------

def _run_table4(args):
    seeds = _seeds(args, 3, 10)
    flows = (args.flow,) if args.flow else (_TABLE4_FLOWS[:3:2] if args.quick else _TABLE4_FLOWS)
    n_iter = args.n_iter if args.n_iter is not None else REPORT["n_iter"]
    runs = []
    for f in flows:
        runs += studies.synthetic_benchmark(studies.TABLE4_SCENARIOS, seeds, flow=f,
                                            n_iter=n_iter, eps=REPORT["eps"],
                                            min_samples=REPORT["min_samples"],
                                            device=args.device, progress=args.progress)
    verdicts = studies.table4_verdict(runs, flow=flows[0])
    # what drives the merges: the overlap factor or the cell count (paint vs partition)
    sweep = studies.occlusion_sweep(
        overlaps=(0.1, 0.5, 0.7, 0.9, 0.95) if args.quick else (0.1, 0.3, 0.5, 0.7, 0.9, 0.95),
        seeds=seeds[:2] if args.quick else seeds[:5], flow=flows[0], n_iter=n_iter,
        eps=REPORT["eps"], min_samples=REPORT["min_samples"], device=args.device,
        progress=args.progress)
    verdicts += studies.density_verdict(sweep)

    fig, axes = _new_figure(3, size=(4.2, 3.4))
    x = np.arange(len(studies.TABLE4_SCENARIOS))
    series = [("paper", [studies.PAPER_TABLE4[n] for n in studies.TABLE4_SCENARIOS], None)]
    for f in flows:
        vals = [[r["mean_iou"] for r in runs if r["flow"] == f and r["scenario"] == n]
                for n in studies.TABLE4_SCENARIOS]
        series.append((f"ours, {f}", [np.mean(v) for v in vals], [np.std(v) for v in vals]))
    width = 0.8 / len(series)
    ax = axes[0, 0]
    for k, (label, vals, err) in enumerate(series):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, yerr=err, label=label,
               capsize=2)
    ax.set_xticks(x, studies.TABLE4_SCENARIOS)
    ax.set_ylim(0.0, 1.05)
    ax.axhline(0.97, color="k", lw=0.6, ls=":")
    ax.set_ylabel("mean IoU (0 for missed cells)")
    ax.legend(loc="lower left", fontsize=7)
    ax = axes[0, 1]
    for k, f in enumerate(flows):
        merged = [sum(r["fn_merged"] for r in runs if r["flow"] == f and r["scenario"] == n)
                  for n in studies.TABLE4_SCENARIOS]
        fp = [sum(r["fp"] for r in runs if r["flow"] == f and r["scenario"] == n)
              for n in studies.TABLE4_SCENARIOS]
        pos = x + (k - (len(flows) - 1) / 2) * (0.8 / len(flows))
        ax.bar(pos, merged, 0.8 / len(flows), label=f"{f}: merged misses", color=f"C{k + 1}")
        ax.scatter(pos, fp, marker="x", color="k", s=12, zorder=3)
    ax.set_xticks(x, studies.TABLE4_SCENARIOS)
    ax.set_ylabel(f"count over {len(seeds)} scenes (x: false positives)")
    ax.set_yscale("symlog")
    ax.legend(fontsize=7)
    ax = axes[0, 2]
    for occ, ls in (("paint", "-"), ("partition", ":")):
        for sweep_name, key, colour in (("overlap", "overlap", "C0"), ("count", "n_cells", "C3")):
            sub = [r for r in sweep if r["occlusion"] == occ and r["sweep"] == sweep_name]
            values = sorted(set(r[key] for r in sub))
            means = [np.mean([r["merged_per_cell"] for r in sub if r[key] == v]) for v in values]
            x_axis = values if key == "overlap" else [v / 30 for v in values]
            ax.plot(x_axis, means, ls=ls, color=colour, marker="o", ms=3,
                    label=f"{occ}: vs {'overlap factor' if key == 'overlap' else 'cells / 30'}")
    ax.set_xlabel("overlap (10 disks) or cells/30 (overlap 0.7)")
    ax.set_ylabel("merged misses per cell")
    ax.legend(fontsize=6)
    fig.suptitle(f"Table 4 re-run: ideal flows, {n_iter} Euler steps, DBSCAN eps "
                 f"{REPORT['eps']}, {len(seeds)} scenes per scenario", fontsize=10)
    runs = [{"part": "table4", **r} for r in runs] + \
        [{"part": "occlusion_sweep", **r} for r in sweep]
    return verdicts, fig, runs


def _run_fig5(args):
    seeds = _seeds(args, 3, 10)
    flow = args.flow or REPORT["flow"]
    n_iter = args.n_iter if args.n_iter is not None else 20
    eps_values = (0.5, 1.5, 5.0)
    runs = []
    for seed in seeds:
        runs += studies.epsilon_stress_test(eps_values, n_iter=n_iter, seed=seed, flow=flow,
                                            min_samples=REPORT["min_samples"],
                                            device=args.device, progress=args.progress)
    verdicts = studies.fig5_verdict(runs)

    from . import synthetic
    from .viz import label_rgb

    _, truth = synthetic.scenario("stress20", seeds[0])
    mask, traj = studies.flow_trajectories(truth, flow, n_iter, device=args.device)
    points = traj[-1]
    fig, axes = _new_figure(len(eps_values), 2, size=(3.0, 3.0))
    for k, eps in enumerate(eps_values):
        pred = studies.labels_from_points(points, mask, eps=eps,
                                          min_samples=REPORT["min_samples"])
        colours = label_rgb(pred)[mask] / 255.0
        colours[pred[mask] == 0] = 0.6        # DBSCAN noise in grey
        ax = axes[0, k]
        ax.imshow(label_rgb(truth, background=(255, 255, 255)), alpha=0.3,
                  interpolation="nearest")
        ax.scatter(points[:, 1], points[:, 0], s=1, c=colours, linewidths=0)
        ax.set_axis_off()
        ax.set_title(f"eps = {eps}: end points, N = {n_iter}", fontsize=9)
        ax = axes[1, k]
        ax.imshow(label_rgb(pred), interpolation="nearest")
        ax.set_axis_off()
        sub = [r for r in runs if r["eps"] == eps]
        paper = studies.PAPER_FIG5[eps]
        stated = ", ".join(f"{c.upper()} {paper[c]}" for c in ("tp", "fp", "fn")
                           if paper[c] is not None)
        ax.set_title(f"ours (mean of {len(sub)}): TP {np.mean([r['tp'] for r in sub]):.1f} "
                     f"FP {np.mean([r['fp'] for r in sub]):.1f} "
                     f"FN {np.mean([r['fn'] for r in sub]):.1f}, "
                     f"IoU {np.mean([r['mean_iou'] for r in sub]):.3f}\n"
                     f"paper: {stated}, IoU {paper['mean_iou']:.3f}", fontsize=7)
    fig.suptitle(f"Fig. 5 re-run: stress20, {flow} flows, DBSCAN min_samples "
                 f"{REPORT['min_samples']}", fontsize=10)
    return verdicts, fig, runs


def _run_fig6(args):
    seeds = _seeds(args, 3, 10)
    flow = args.flow or REPORT["flow"]
    if args.quick:
        iterations = (0, 10, 20, 30, 50, 75, 100, 125, 150, 175, 200)
    else:
        iterations = tuple(sorted(set(range(0, 21, 5)) | set(range(0, 201, 10))))
    if args.n_iter is not None:
        iterations = tuple(n for n in iterations if n <= args.n_iter) or (0,)
    runs = []
    for seed in seeds:
        runs += studies.epsilon_iterations_grid(_FIG6_EPS, iterations, seed=seed, flow=flow,
                                                min_samples=REPORT["min_samples"],
                                                device=args.device, progress=args.progress)
    from . import synthetic

    reach = float(np.mean([studies.centroid_reach(synthetic.scenario("stress20", s)[1]).max()
                           for s in seeds]))
    verdicts = studies.fig6_verdict(runs, reach=reach)
    collapse = verdicts[0]["ours_mean"]
    fig, axes = _new_figure(1, size=(6.5, 3.6))
    ax = axes[0, 0]
    for eps in _FIG6_EPS:
        curve = [np.mean([r["mean_iou"] for r in runs if r["eps"] == eps and r["n_iter"] == n])
                 for n in iterations]
        ax.plot(iterations, curve, marker="o", ms=3, label=f"eps = {eps}")
    ax.axvline(collapse, color="k", ls="--", lw=0.8)
    ax.text(collapse, 0.05, f" eps 1.5-5 within {studies.FIG6_TOL}\n of final: N = {collapse:.0f}",
            fontsize=8)
    ax.set_xlabel("Euler iterations N")
    ax.set_ylabel("mean IoU")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"Fig. 6 re-run: stress20, {flow} flows, mean of {len(seeds)} scenes",
                 fontsize=10)
    return verdicts, fig, runs


def _run_flows(args):
    seeds = _seeds(args, 2, 5)
    flows = (args.flow,) if args.flow else (PETERS["flow"], "edt")
    n_iter = args.n_iter if args.n_iter is not None else PETERS["n_iter"]
    runs = []
    for seed in seeds:
        runs += studies.flow_type_comparison(
            studies.TABLE4_SCENARIOS, flows, seed=seed, n_iter=n_iter, eps=PETERS["eps"],
            min_samples=PETERS["min_samples"], step=PETERS["step"], check_every=5,
            device=args.device, progress=args.progress)
    verdicts = []
    ap = {f: [r["ap50"] for r in runs if r["flow"] == f] for f in flows}
    for f in flows:
        m = float(np.mean(ap[f]))
        ok = m >= 0.9 and all(m >= float(np.mean(v)) for v in ap.values())
        verdicts.append(studies._verdict_row(
            "flows", f"AP50 over Ex1-7, Peters' settings ({f})", None, ap[f], ok,
            f"criterion: mean AP50 >= 0.9 and no worse than the other flows "
            f"({n_iter} steps of {PETERS['step']}, DBSCAN {PETERS['eps']}/"
            f"{PETERS['min_samples']}; Peters reports real-data scores only)"))
    fig, axes = _new_figure(1, size=(7.0, 3.4))
    ax = axes[0, 0]
    x = np.arange(len(studies.TABLE4_SCENARIOS))
    for k, f in enumerate(flows):
        vals = [[r["ap50"] for r in runs if r["flow"] == f and r["scenario"] == n]
                for n in studies.TABLE4_SCENARIOS]
        ax.bar(x + (k - (len(flows) - 1) / 2) * (0.8 / len(flows)), [np.mean(v) for v in vals],
               0.8 / len(flows), yerr=[np.std(v) for v in vals], capsize=2, label=f)
    ax.set_xticks(x, studies.TABLE4_SCENARIOS)
    ax.set_ylabel("AP50")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"Peters' settings: {n_iter} Euler steps of {PETERS['step']}, DBSCAN eps "
                 f"{PETERS['eps']}, min_samples {PETERS['min_samples']}", fontsize=9)
    return verdicts, fig, runs


_RUNNERS = {"table4": _run_table4, "fig5": _run_fig5, "fig6": _run_fig6, "flows": _run_flows}


def _run_training(name, args):
    _, run = training_studies.REPRODUCTIONS[name]
    rows, fig = run(args.out, args.quick, list(args.seeds) if args.seeds else None, args.device)
    return rows, fig, None


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m fieldseg_core.reproduce",
        description="Re-run the papers' experiments (writes ID.png and ID.csv with a "
                    "'reproduced' verdict per finding).")
    parser.add_argument("study", nargs="?", choices=tuple(_all_studies()) + ("all",),
                        help="study id (see --list), or 'all'")
    parser.add_argument("--list", action="store_true", help="print the study ids and exit")
    parser.add_argument("--all", dest="run_all", action="store_true", help="run every study")
    parser.add_argument("--out", help="output directory (created if missing)")
    parser.add_argument("--quick", action="store_true",
                        help="CPU-sized runs: fewer scenes, seeds and iterations")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="scene numbers to run (default: 3 quick / 10 full)")
    parser.add_argument("--flow", choices=tuple(studies.FLOWS),
                        help="flow construction (default: the study's own)")
    parser.add_argument("--n-iter", type=int, dest="n_iter",
                        help="Euler steps (fig6: the largest iteration shown)")
    parser.add_argument("--device", default=None,
                        help="torch device (default: CUDA when present, else cpu)")
    parser.add_argument("--quiet", dest="progress", action="store_false",
                        help="no progress bars")
    return parser


def main(argv=None):
    """Command-line entry point; returns 0 on success.

    Parameters
    ----------
    argv : list of str, optional
        Arguments without the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success. Bad arguments (an unknown study id, a missing
        ``--out``) exit through :class:`SystemExit` with status 2 and a
        message on stderr, as argparse does.

    Examples
    --------
    >>> main(["--list"])  # doctest: +ELLIPSIS
    table4
    fig5
    fig6
    flows
    ...0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    every = _all_studies()
    if args.list:
        for name in every:
            print(name)
        return 0
    if args.run_all:
        args.study = "all"
    if args.study is None:
        parser.error("a study id is required; run with --list to see them")
    if not args.out:
        parser.error("--out DIR is required")
    if args.seeds and any(s < 0 for s in args.seeds):
        parser.error(f"--seeds must be non-negative, got {args.seeds}")
    if args.n_iter is not None and args.n_iter < 0:
        parser.error(f"--n-iter must be >= 0, got {args.n_iter}")
    os.makedirs(args.out, exist_ok=True)
    summary = []
    for name in (tuple(every) if args.study == "all" else (args.study,)):
        if name in _RUNNERS:
            rows, fig, runs = _RUNNERS[name](args)
        else:
            rows, fig, runs = _run_training(name, args)
        written = []
        if fig is not None:
            png = os.path.join(args.out, f"{name}.png")
            fig.savefig(png, dpi=110)
            written.append(png)
        table = os.path.join(args.out, f"{name}.csv")
        _write_csv(table, rows, studies.VERDICT_COLUMNS)
        written.append(table)
        if runs is not None:
            detail = os.path.join(args.out, f"{name}_runs.csv")
            _write_csv(detail, runs)
            written.append(detail)
        summary += rows
        print(f"{name}: wrote {', '.join(written)}; "
              f"{sum(bool(r['reproduced']) for r in rows)}/{len(rows)} findings reproduced")
    if args.study == "all":
        _write_csv(os.path.join(args.out, "summary.csv"), summary, studies.VERDICT_COLUMNS)
    print(summary_table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
