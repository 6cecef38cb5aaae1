"""Re-run the synthetic experiments of Le & Nguyen and write a figure and a table for each.

Usage::

    python -m fieldseg_core.reproduce --list
    python -m fieldseg_core.reproduce fig5 --out results/
    python -m fieldseg_core.reproduce all --out results/ --quick

Each study ``ID`` writes ``DIR/ID.png`` (a matplotlib figure) and
``DIR/ID.csv``. Where the report gives numbers, the CSV holds them in
``paper_*`` columns beside ours. Everything runs on the CPU in about a
minute per study (``--quick``: seconds, on reduced settings).

Studies
-------
``table4``
    Table 4: the seven scenarios Ex 1-7 with the report's centroid flows and
    with Cellpose's heat flows (means over ``--seeds``), beside the report's
    mean IoU.
``fig5``
    Fig. 5: DBSCAN ``eps`` in {0.5, 1.5, 5.0} on the 20-cell high-overlap
    scene after ``N = 20`` Euler steps; end-point clouds and masks.
``fig6``
    Fig. 6: mean IoU and AP50 over ``eps`` x iterations 0-200.
``flows``
    Centroid, heat, EDT and truncated-SDF flows: AP50 and the iterations
    they need before the DBSCAN partition stops changing.

All computations are in :mod:`fieldseg_core.studies`; this module only
chooses the settings, draws and writes.

References
----------
.. [1] Course report on Cellpose-SAM with a from-scratch flow-field
   re-implementation , Sec. 4.1, Table 4, Figs. 5-6.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys

import numpy as np

from . import studies

__all__ = ["STUDIES", "main"]

#: Study id -> one-line description (the ids ``--list`` prints).
STUDIES = {
    "table4": "Le & Nguyen Table 4: mean IoU on synthetic scenarios Ex 1-7",
    "fig5": "Le & Nguyen Fig. 5: DBSCAN eps stress test, 20 cells, N = 20",
    "fig6": "Le & Nguyen Fig. 6: eps x Euler iterations (0-200)",
    "flows": "centroid vs heat vs EDT vs truncated-SDF flows: accuracy and convergence",
}

_TABLE4_FLOWS = ("centroid", "heat")


# --------------------------------------------------------------------------
# output helpers
# --------------------------------------------------------------------------

def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return value


def _write_csv(path, rows):
    fields = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
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


def _mean_by(rows, keys, values):
    """Average ``values`` of the rows over all rows sharing ``keys`` (first-seen order)."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    out = []
    for key, members in groups.items():
        agg = dict(zip(keys, key))
        agg["n_seeds"] = len(members)
        for v in values:
            agg[v] = float(np.mean([m[v] for m in members]))
        out.append(agg)
    return out


# --------------------------------------------------------------------------
# the studies
# --------------------------------------------------------------------------

def _run_table4(args):
    scenarios = ("ex2", "ex5") if args.quick else studies.TABLE4_SCENARIOS
    seeds = args.seeds or ((0,) if args.quick else (0, 1, 2))
    flow_names = (args.flow,) if args.flow else _TABLE4_FLOWS
    n_iter = args.n_iter if args.n_iter is not None else (100 if args.quick else 200)
    per_flow = {f: _mean_by(studies.synthetic_benchmark(
                    scenarios, seeds, flow=f, n_iter=n_iter, device=args.device,
                    progress=args.progress),
                    ("scenario", "description", "n_cells", "paper_mean_iou"),
                    ("mean_iou", "ap50", "tp", "fp", "fn"))
                for f in flow_names}
    rows = []
    for i, name in enumerate(scenarios):
        first = per_flow[flow_names[0]][i]
        row = {k: first[k] for k in ("scenario", "description", "n_cells", "n_seeds")}
        row["n_iter"] = n_iter
        row["paper_mean_iou"] = first["paper_mean_iou"]
        for f in flow_names:
            for k in ("mean_iou", "ap50", "tp", "fp", "fn"):
                row[f"{k}_{f}"] = per_flow[f][i][k]
        rows.append(row)

    fig, axes = _new_figure(1, size=(max(6.0, 1.3 * len(scenarios)), 3.6))
    ax = axes[0, 0]
    x = np.arange(len(rows))
    series = [("paper (centroid flows)", [r["paper_mean_iou"] or np.nan for r in rows])]
    series += [(f"ours, {f} flows", [r[f"mean_iou_{f}"] for r in rows]) for f in flow_names]
    width = 0.8 / len(series)
    for k, (label, vals) in enumerate(series):
        ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, label=label)
    ax.set_xticks(x, [r["scenario"] for r in rows])
    ax.set_ylim(0.5, 1.02)
    ax.set_ylabel("mean IoU (0 for missed cells)")
    ax.set_title(f"Table 4: ideal flows, {n_iter} Euler steps, DBSCAN eps 1.5 "
                 f"(mean of {len(seeds)} seed(s))")
    ax.legend(loc="lower left", fontsize=8)
    return rows, fig


def _run_fig5(args):
    seeds = args.seeds or (0,)
    flow = args.flow or "centroid"
    n_iter = args.n_iter if args.n_iter is not None else 20
    eps_values = (0.5, 1.5, 5.0)
    rows = []
    for seed in seeds:
        rows += studies.epsilon_stress_test(eps_values, n_iter=n_iter, seed=seed, flow=flow,
                                            device=args.device, progress=args.progress)

    from . import synthetic
    from .viz import label_rgb

    _, truth = synthetic.scenario("stress20", seeds[0])
    mask, traj = studies.flow_trajectories(truth, flow, n_iter, device=args.device)
    points = traj[-1]
    fig, axes = _new_figure(len(eps_values), 2, size=(3.6, 3.6))
    for k, eps in enumerate(eps_values):
        pred = studies.labels_from_points(points, mask, eps=eps)
        row = next(r for r in rows if r["seed"] == seeds[0] and r["eps"] == eps)
        colours = label_rgb(pred)[mask] / 255.0
        colours[pred[mask] == 0] = 0.6        # DBSCAN noise in grey
        ax = axes[0, k]
        # the true cells, faint, show where each cloud came from
        ax.imshow(label_rgb(truth, background=(255, 255, 255)), alpha=0.3,
                  interpolation="nearest")
        ax.scatter(points[:, 1], points[:, 0], s=2, c=colours, linewidths=0)
        ax.set_axis_off()
        paper = studies.PAPER_FIG5[eps]
        ax.set_title(f"eps = {eps}: end points after N = {n_iter}", fontsize=9)
        ax = axes[1, k]
        ax.imshow(label_rgb(pred), interpolation="nearest")
        ax.set_axis_off()
        stated = ", ".join(f"{c.upper()}={paper[c]}" for c in ("tp", "fp", "fn")
                           if paper[c] is not None)
        ax.set_title(f"ours TP={row['tp']} FP={row['fp']} FN={row['fn']} mIoU={row['mean_iou']:.3f}\n"
                     f"paper {stated} mIoU={paper['mean_iou']:.3f}", fontsize=8)
    fig.suptitle(f"Fig. 5 re-run: stress20 (seed {seeds[0]}), {flow} flows, "
                 "DBSCAN min_samples 5", fontsize=10)
    return rows, fig


def _run_fig6(args):
    seeds = args.seeds or (0,)
    flow = args.flow or "centroid"
    if args.quick:
        eps_values, iterations = (0.5, 1.5), (0, 10, 20, 50)
    else:
        # finer early on, where the clouds contract and the curves move
        eps_values = (0.5, 1.0, 1.5, 2.5, 5.0)
        iterations = tuple(sorted(set(range(0, 21, 2)) | set(range(0, 201, 10))))
    if args.n_iter is not None:
        iterations = tuple(n for n in iterations if n <= args.n_iter) or (0,)
    rows = []
    for seed in seeds:
        rows += studies.epsilon_iterations_grid(eps_values, iterations, seed=seed, flow=flow,
                                                device=args.device, progress=args.progress)
    means = _mean_by(rows, ("eps", "n_iter"), ("mean_iou", "ap50"))
    fig, axes = _new_figure(2)
    for j, key in enumerate(("mean_iou", "ap50")):
        ax = axes[0, j]
        for eps in eps_values:
            pts = [(m["n_iter"], m[key]) for m in means if m["eps"] == eps]
            ax.plot(*zip(*pts), marker="o", ms=3, label=f"eps = {eps}")
        ax.set_xlabel("Euler iterations N")
        ax.set_ylabel("mean IoU" if key == "mean_iou" else "AP50 = TP/(TP+FP+FN)")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Fig. 6 re-run: stress20, {flow} flows, mean of {len(seeds)} seed(s)",
                 fontsize=10)
    return rows, fig


def _run_flows(args):
    seed = args.seeds[0] if args.seeds else 0
    if args.quick:
        scenarios, flow_names, n_iter = ("ex2",), ("centroid", "heat"), 60
    else:
        scenarios, flow_names, n_iter = studies.TABLE4_SCENARIOS, tuple(studies.FLOWS), 200
    if args.flow:
        flow_names = (args.flow,)
    if args.n_iter is not None:
        n_iter = args.n_iter
    rows = studies.flow_type_comparison(scenarios, flow_names, seed=seed, n_iter=n_iter,
                                        device=args.device, progress=args.progress)
    width_in = min(9.0, max(4.5, 0.3 * len(scenarios) * len(flow_names)))
    fig, axes = _new_figure(2, size=(width_in, 3.4))
    x = np.arange(len(scenarios))
    width = 0.8 / len(flow_names)
    for j, (key, label) in enumerate((("ap50", "AP50"),
                                      ("iters_stable_partition", "iterations until stable"))):
        ax = axes[0, j]
        for k, f in enumerate(flow_names):
            vals = [next(r[key] for r in rows if r["scenario"] == s and r["flow"] == f)
                    for s in scenarios]
            ax.bar(x + (k - (len(flow_names) - 1) / 2) * width, vals, width, label=f)
        ax.set_xticks(x, scenarios)
        ax.set_ylabel(label)
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center",
               ncols=len(flow_names), fontsize=8)
    fig.suptitle(f"Flow types: {n_iter} Euler steps, DBSCAN eps 1.5 (seed {seed})", fontsize=10)
    return rows, fig


_RUNNERS = {"table4": _run_table4, "fig5": _run_fig5, "fig6": _run_fig6, "flows": _run_flows}


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m fieldseg_core.reproduce",
        description="Re-run the synthetic flow-field experiments of Le & Nguyen "
                    "(writes ID.png and ID.csv).")
    parser.add_argument("study", nargs="?", choices=tuple(STUDIES) + ("all",),
                        help="study id (see --list), or 'all'")
    parser.add_argument("--list", action="store_true", help="print the study ids and exit")
    parser.add_argument("--out", help="output directory (created if missing)")
    parser.add_argument("--quick", action="store_true",
                        help="reduced scenes/grids for a smoke test (seconds)")
    parser.add_argument("--seeds", type=int, nargs="+", help="scene seeds (default per study)")
    parser.add_argument("--flow", choices=tuple(studies.FLOWS),
                        help="flow construction (default: the study's own)")
    parser.add_argument("--n-iter", type=int, dest="n_iter",
                        help="Euler steps (fig6, quick or not: the largest iteration shown)")
    parser.add_argument("--device", default="cpu", help="torch device for the integration")
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
    >>> main(["--list"])
    table4
    fig5
    fig6
    flows
    0
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.list:
        for name in STUDIES:
            print(name)
        return 0
    if args.study is None:
        parser.error("a study id is required; run with --list to see them")
    if not args.out:
        parser.error("--out DIR is required")
    if args.seeds and any(s < 0 for s in args.seeds):
        parser.error(f"--seeds must be non-negative, got {args.seeds}")
    if args.n_iter is not None and args.n_iter < 0:
        parser.error(f"--n-iter must be >= 0, got {args.n_iter}")
    os.makedirs(args.out, exist_ok=True)
    for name in (tuple(STUDIES) if args.study == "all" else (args.study,)):
        rows, fig = _RUNNERS[name](args)
        png = os.path.join(args.out, f"{name}.png")
        table = os.path.join(args.out, f"{name}.csv")
        fig.savefig(png, dpi=110)
        _write_csv(table, rows)
        print(f"{name}: wrote {png} and {table} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
