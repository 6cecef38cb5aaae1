"""Tests for fieldseg_core.studies and the fieldseg_core.reproduce command line."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from fieldseg_core import dynamics, reproduce, studies, synthetic
from fieldseg_core.flows import centroid_flows

ROOT = Path(__file__).resolve().parents[1]
SCORE_KEYS = {"n_true", "n_pred", "tp", "fp", "fn", "fn_merged", "ap50", "mean_iou",
              "mean_matched_iou"}


def check_counts(row):
    """Invariants every scored row must satisfy."""
    assert row["tp"] + row["fn"] == row["n_true"]
    assert 0 <= row["fn_merged"] <= row["fn"]
    assert row["tp"] + row["fp"] == row["n_pred"]
    total = row["tp"] + row["fp"] + row["fn"]
    assert row["ap50"] == pytest.approx(row["tp"] / total if total else 1.0)
    # mean over true cells with 0 for the unmatched = matched mean * TP / n_true
    assert row["mean_iou"] == pytest.approx(row["mean_matched_iou"] * row["tp"] / row["n_true"])
    assert 0.0 <= row["mean_iou"] <= row["mean_matched_iou"] <= 1.0


# --------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------

def test_score_counts_missed_and_merged_cells_as_zero():
    y_true = np.zeros((10, 10), dtype=int)
    y_true[0:4, 0:4] = 1            # 16 px, predicted exactly
    y_true[6:10, 0:4] = 2           # 16 px } merged into one prediction of 32 px:
    y_true[6:10, 4:8] = 3           # 16 px } IoU 1/2 with each, only one can match
    y_pred = np.zeros_like(y_true)
    y_pred[0:4, 0:4] = 7
    y_pred[6:10, 0:8] = 9
    s = studies.score(y_true, y_pred)
    assert (s["tp"], s["fp"], s["fn"], s["n_true"], s["n_pred"]) == (2, 0, 1, 3, 2)
    assert s["mean_iou"] == pytest.approx((1.0 + 0.5 + 0.0) / 3)
    assert s["mean_matched_iou"] == pytest.approx(0.75)
    assert s["ap50"] == pytest.approx(2 / 3)


def test_labels_from_points_puts_clusters_on_the_mask_and_noise_on_background():
    mask = np.zeros((6, 6), dtype=bool)
    mask[0, :3] = mask[5, 3:] = True
    mask[2, 2] = True                                    # a loner: noise
    points = np.array([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0],       # row-major order
                       [2.0, 2.0],
                       [5.0, 3.0], [5.0, 4.0], [5.0, 5.0]]) + 0.2
    out = studies.labels_from_points(points, mask, eps=1.0, min_samples=2)
    assert out.dtype == np.int32 and out.shape == mask.shape
    assert set(out[0, :3]) == {1} and set(out[5, 3:]) == {2}
    assert out[2, 2] == 0 and not out[~mask].any()


def test_labels_from_points_sinks_matches_cluster_sinks():
    labels = synthetic.scenario("ex2", 0)[1]
    mask, traj = studies.flow_trajectories(labels, "heat", n_iter=60, device="cpu")
    out = studies.labels_from_points(traj[-1], mask, cluster="sinks")
    expected = dynamics.cluster_sinks(traj[-1], labels.shape)
    np.testing.assert_array_equal(out[mask], expected)


def test_flow_trajectories_equal_follow_flows():
    labels = synthetic.scenario("ex3", 1)[1]
    mask, traj = studies.flow_trajectories(labels, "centroid", n_iter=15, step=0.5, device="cpu")
    final = dynamics.follow_flows(centroid_flows(labels), labels > 0, n_iter=15, step=0.5,
                                  device="cpu")
    np.testing.assert_array_equal(mask, labels > 0)
    assert traj.shape == (16, mask.sum(), 2)
    np.testing.assert_allclose(traj[0], np.argwhere(mask), atol=1e-4)   # float32 grid
    np.testing.assert_array_equal(traj[-1], final)


def test_same_partition_is_equality_up_to_renaming():
    a = np.array([0, 0, 1, 1, -1, 2])
    assert studies._same_partition(a, np.array([5, 5, 3, 3, -1, 0]))
    assert not studies._same_partition(a, np.array([5, 5, 5, 3, -1, 0]))   # regrouped
    assert not studies._same_partition(a, np.array([5, 5, 3, 3, 4, 0]))    # noise differs
    assert not studies._same_partition(a, np.array([0, 0, 1, 1, -1, 1]))   # merged


def test_iterations_until_still_on_hand_made_trajectories():
    # two points; per-step moves (median over the two) 1, 1, 0.05, 0.05, 0.05
    steps = np.array([1.0, 1.0, 0.05, 0.05, 0.05])
    pos = np.concatenate([[0.0], np.cumsum(steps)])
    traj = np.stack([np.stack([pos, pos], -1)] * 2, axis=1)    # (6, 2, 2)
    traj[..., 1] = 0.0
    assert studies._iterations_until_still(traj, tol=0.1) == 2
    assert studies._iterations_until_still(traj, tol=2.0) == 0
    assert studies._iterations_until_still(traj, tol=0.01) is None


# --------------------------------------------------------------------------
# the studies
# --------------------------------------------------------------------------

def test_synthetic_benchmark_columns_counts_and_paper_values():
    rows = studies.synthetic_benchmark(["ex2", "ex6"], seeds=(0, 1), flow="centroid", n_iter=80,
                                       device="cpu", progress=False)
    assert [(r["scenario"], r["seed"]) for r in rows] == [("ex2", 0), ("ex2", 1),
                                                          ("ex6", 0), ("ex6", 1)]
    expected = {"scenario", "description", "seed", "flow", "cluster", "n_iter", "eps",
                "min_samples", "n_cells", "paper_mean_iou"} | SCORE_KEYS
    for r in rows:
        assert set(r) == expected
        check_counts(r)
        preset = synthetic.SCENARIOS[r["scenario"]]
        assert r["paper_mean_iou"] == preset["paper_mean_iou"]
        assert r["n_true"] == r["n_cells"] == preset["n_cells"]
        assert r["description"] == preset["description"]


def test_synthetic_benchmark_agrees_with_masks_from_flows():
    # reference: the package's whole pipeline with the same settings and no size filter
    labels = synthetic.scenario("ex7", 2)[1]
    row = studies.synthetic_benchmark(["ex7"], seeds=(2,), flow="centroid", n_iter=50, eps=2.0,
                                      min_samples=4, device="cpu", progress=False)[0]
    pred = dynamics.masks_from_flows(centroid_flows(labels), labels > 0, n_iter=50,
                                     cluster="dbscan", eps=2.0, min_samples=4, min_size=0,
                                     device="cpu")
    assert {k: row[k] for k in SCORE_KEYS} == pytest.approx(studies.score(labels, pred))


def test_epsilon_stress_test_rows_and_paper_columns():
    eps_values = (0.5, 1.5, 5.0, 2.0)
    rows = studies.epsilon_stress_test(eps_values, n_iter=20, device="cpu", progress=False)
    assert [r["eps"] for r in rows] == list(eps_values)
    for r in rows:
        assert {"eps", "n_iter", "tp", "fp", "fn", "mean_iou"} <= set(r)
        assert r["n_iter"] == 20 and r["n_true"] == 20 and r["scenario"] == "stress20"
        check_counts(r)
        paper = studies.PAPER_FIG5.get(r["eps"], {})
        for k in ("tp", "fp", "fn", "mean_iou"):
            assert r[f"paper_{k}"] == paper.get(k)
    assert rows[0]["paper_fp"] == 6 and rows[1]["paper_tp"] == 18 and rows[2]["paper_fn"] == 4
    assert rows[3]["paper_mean_iou"] is None


def test_zero_iterations_give_the_connected_components_of_the_pixel_grid():
    # Unmoved points sit on the integer grid: with min_samples = 1 DBSCAN at eps 1
    # links 4-neighbours and at eps 1.5 8-neighbours; at eps 0.5 with
    # min_samples 2 no pixel has a neighbour, so all are noise.
    labels = synthetic.scenario("stress20", 3)[1]
    rows = studies.epsilon_stress_test((0.5,), n_iter=0, seed=3, min_samples=2, device="cpu",
                                       progress=False)
    assert rows[0]["n_pred"] == 0 and rows[0]["tp"] == 0
    for eps, structure in ((1.0, ndi.generate_binary_structure(2, 1)),
                           (1.5, np.ones((3, 3)))):
        row = studies.epsilon_stress_test((eps,), n_iter=0, seed=3, min_samples=1,
                                          device="cpu", progress=False)[0]
        components, n = ndi.label(labels > 0, structure=structure)
        assert row["n_pred"] == n
        assert {k: row[k] for k in SCORE_KEYS} == pytest.approx(studies.score(labels, components))


def test_grid_reuses_one_integration_and_tight_eps_improves_with_iterations():
    iterations = (0, 20, 200)
    eps_values = (0.5, 1.5)
    rows = studies.epsilon_iterations_grid(eps_values, iterations=iterations, device="cpu",
                                           progress=False)
    assert [(r["n_iter"], r["eps"]) for r in rows] == [(n, e) for n in iterations
                                                        for e in eps_values]
    for r in rows:
        assert {"eps", "n_iter", "mean_iou", "ap50", "tp", "fp", "fn"} <= set(r)
        check_counts(r)
    at = {(r["n_iter"], r["eps"]): r for r in rows}
    # tight eps: nothing found on the bare grid, most cells once the clouds contract
    assert at[0, 0.5]["tp"] == 0 and at[0, 0.5]["mean_iou"] == 0.0
    assert at[200, 0.5]["mean_iou"] > 0.5 and at[200, 0.5]["ap50"] > 0.5
    # clustering the stored trajectory = integrating only that far
    fresh = studies.epsilon_stress_test((0.5, 1.5), n_iter=20, device="cpu", progress=False)
    for r in fresh:
        assert {k: at[20, r["eps"]][k] for k in SCORE_KEYS} == {k: r[k] for k in SCORE_KEYS}


def test_grid_sorts_and_deduplicates_iterations():
    rows = studies.epsilon_iterations_grid((1.5,), iterations=(10, 0, 10), device="cpu",
                                           progress=False)
    assert [r["n_iter"] for r in rows] == [0, 10]


def test_flow_type_comparison_convergence_definition():
    n_iter, check_every = 60, 5
    rows = studies.flow_type_comparison(["ex2"], flows=("heat", "tsdf"), n_iter=n_iter,
                                        check_every=check_every, device="cpu", progress=False)
    assert [r["flow"] for r in rows] == ["heat", "tsdf"]
    labels = synthetic.scenario("ex2", 0)[1]
    for r in rows:
        check_counts(r)
        stable = r["iters_stable_partition"]
        assert stable % check_every == 0 and 0 <= stable <= n_iter
        assert r["iters_still"] is None or 0 <= r["iters_still"] < n_iter
        # check the definition against an independent re-clustering
        _, traj = studies.flow_trajectories(labels, r["flow"], n_iter, device="cpu")
        final = dynamics.cluster_dbscan(traj[-1], 1.5, 5)
        same = [studies._same_partition(dynamics.cluster_dbscan(traj[t], 1.5, 5), final)
                for t in range(0, n_iter + 1, check_every)]
        first = stable // check_every
        assert all(same[first:])
        assert first == 0 or not same[first - 1]


def test_progress_bar_does_not_change_results(capsys):
    quiet = studies.epsilon_stress_test((1.5,), device="cpu", progress=False)
    loud = studies.epsilon_stress_test((1.5,), device="cpu", progress=True)
    assert quiet == loud


@pytest.mark.parametrize("call, exc, words", [
    (lambda: studies.synthetic_benchmark(["ex9"], progress=False), ValueError, "scenarios"),
    (lambda: studies.synthetic_benchmark("ex1", progress=False), TypeError, "scenarios"),
    (lambda: studies.synthetic_benchmark(["ex1"], flow="magic", progress=False), ValueError, "flow"),
    (lambda: studies.synthetic_benchmark(["ex1"], cluster="kmeans", progress=False), ValueError,
     "cluster"),
    (lambda: studies.synthetic_benchmark(["ex1"], seeds=(), progress=False), ValueError, "seeds"),
    (lambda: studies.synthetic_benchmark(["ex1"], seeds=(-1,), progress=False), ValueError, "seeds"),
    (lambda: studies.synthetic_benchmark(["ex1"], eps=0, progress=False), ValueError, "eps"),
    (lambda: studies.synthetic_benchmark(["ex1"], progress="yes"), TypeError, "progress"),
    (lambda: studies.epsilon_stress_test((), progress=False), ValueError, "eps_values"),
    (lambda: studies.epsilon_stress_test((1.0, -2.0), progress=False), ValueError, "eps_values"),
    (lambda: studies.epsilon_stress_test(n_iter=-1, progress=False), ValueError, "n_iter"),
    (lambda: studies.epsilon_stress_test(min_samples=0, progress=False), ValueError, "min_samples"),
    (lambda: studies.epsilon_stress_test(scenario="nope", progress=False), ValueError, "scenario"),
    (lambda: studies.epsilon_iterations_grid(iterations=(0, 2.5), progress=False), TypeError,
     "iterations"),
    (lambda: studies.epsilon_iterations_grid(iterations=(-10,), progress=False), ValueError,
     "iterations"),
    (lambda: studies.flow_type_comparison(["ex1"], flows=("heat", "sdf"), progress=False),
     ValueError, "flows"),
    (lambda: studies.flow_type_comparison(["ex1"], check_every=0, progress=False), ValueError,
     "check_every"),
    (lambda: studies.flow_trajectories(np.ones((4, 4)), "heat"), TypeError, "labels"),
    (lambda: studies.labels_from_points(np.zeros((3, 2)), np.ones((2, 2), bool)), ValueError,
     "points"),
    (lambda: studies.labels_from_points(np.zeros((4, 2)), np.ones((2, 2)) * 0.5), TypeError, "mask"),
])
def test_bad_input_raises_a_clear_error(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


# --------------------------------------------------------------------------
# python -m fieldseg_core.reproduce
# --------------------------------------------------------------------------

def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_reproduce_list(capsys):
    assert reproduce.main(["--list"]) == 0
    ids = capsys.readouterr().out.split()
    assert ids == list(reproduce.STUDIES) + list(reproduce.training_studies.REPRODUCTIONS)
    assert {"table4", "fig5", "fig6", "flows"} <= set(ids)


def test_reproduce_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "fieldseg_core.reproduce", "--list"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == list(reproduce.STUDIES) + list(
        reproduce.training_studies.REPRODUCTIONS)


def test_reproduce_fig5_writes_png_verdicts_and_runs(tmp_path, capsys):
    out = tmp_path / "results"
    assert reproduce.main(["fig5", "--out", str(out), "--quick", "--quiet", "--seeds", "0"]) == 0
    png = (out / "fig5.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    verdicts = read_csv(out / "fig5.csv")
    assert list(verdicts[0]) == list(studies.VERDICT_COLUMNS)
    assert all(r["reproduced"] in ("yes", "no") and r["reason"] for r in verdicts)
    assert {"FP at eps 0.5", "FN at eps 5.0", "best mean IoU at eps 1.5"} <= \
        {r["quantity"] for r in verdicts}
    runs = read_csv(out / "fig5_runs.csv")
    assert [float(r["eps"]) for r in runs] == [0.5, 1.5, 5.0]
    for r in runs:
        paper = studies.PAPER_FIG5[float(r["eps"])]
        assert float(r["paper_mean_iou"]) == pytest.approx(paper["mean_iou"])
        assert int(r["tp"]) + int(r["fn"]) == int(r["n_true"]) == 20
    # the CSVs hold what the study returns, and the verdict what fig5_verdict says
    direct = studies.epsilon_stress_test(device="cpu", progress=False)
    assert [int(r["fp"]) for r in runs] == [d["fp"] for d in direct]
    expect = studies.fig5_verdict(direct)
    assert [r["reproduced"] for r in verdicts] == ["yes" if e["reproduced"] else "no"
                                                   for e in expect]
    assert "fig5.png" in capsys.readouterr().out


def test_reproduce_fig6_quick_grid(tmp_path):
    assert reproduce.main(["fig6", "--out", str(tmp_path), "--quick", "--quiet",
                           "--seeds", "1"]) == 0
    runs = read_csv(tmp_path / "fig6_runs.csv")
    assert {float(r["eps"]) for r in runs} == {0.5, 1.0, 1.5, 2.0, 3.0, 5.0}
    assert max(int(r["n_iter"]) for r in runs) == 200 and min(int(r["n_iter"]) for r in runs) == 0
    assert (tmp_path / "fig6.png").stat().st_size > 10_000
    verdicts = read_csv(tmp_path / "fig6.csv")
    assert verdicts[0]["quantity"].startswith("N where eps 1.5-5.0")


def test_reproduce_all_quick_runs_own_and_registered_studies(tmp_path, monkeypatch, capsys):
    calls = []

    def fake(out, quick, seeds, device):
        calls.append((out, quick, seeds, device))
        return [{"study": "fake", "quantity": "q", "paper": 1.0, "ours_mean": 0.5,
                 "ours_spread": 0.1, "n_seeds": 3, "reproduced": False, "reason": "r"}], None

    # Only the fake training study: the real ones train models (tested in test_training_studies).
    monkeypatch.setattr(reproduce.training_studies, "REPRODUCTIONS", {"fake": ("a fake study", fake)})
    assert reproduce.main(["--list"]) == 0
    assert capsys.readouterr().out.split()[-1] == "fake"
    assert reproduce.main(["--all", "--quick", "--quiet", "--seeds", "0",
                           "--out", str(tmp_path)]) == 0
    assert calls == [(str(tmp_path), True, [0], None)]
    summary = read_csv(tmp_path / "summary.csv")
    assert {r["study"] for r in summary} == {"table4", "fig5", "fig6", "flows", "fake"}
    assert all(r["reproduced"] in ("yes", "no") for r in summary)
    for name in ("table4", "fig5", "fig6", "flows"):
        assert (tmp_path / f"{name}.png").exists() and (tmp_path / f"{name}_runs.csv").exists()
    printed = capsys.readouterr().out
    assert "fake" in printed and "reproduced" in printed


# --------------------------------------------------------------------------
# verdict logic on hand-made result tables
# --------------------------------------------------------------------------

def _t4(values, fn=None, merged=None, flow="centroid_max", seeds=(0,)):
    fn = fn or {}
    merged = merged or fn
    return [{"scenario": f"ex{i + 1}", "flow": flow, "seed": s, "mean_iou": v,
             "fn": fn.get(i + 1, 0), "fn_merged": merged.get(i + 1, 0), "fp": 0, "ap50": v}
            for i, v in enumerate(values) for s in seeds]


def _verdicts(rows, **kw):
    return {r["quantity"]: r for r in studies.table4_verdict(rows, **kw)}


def test_table4_verdict_accepts_the_papers_own_numbers():
    paper = [studies.PAPER_TABLE4[f"ex{i}"] for i in range(1, 8)]
    v = _verdicts(_t4(paper, fn={5: 4}))
    assert all(r["reproduced"] for r in v.values())
    assert v["mean IoU ex5 (centroid_max)"]["ours_mean"] == pytest.approx(0.834)


def test_table4_verdict_rejects_each_broken_pattern():
    good = [0.99, 0.99, 0.99, 0.98, 0.80, 0.90, 0.98]
    # Ex7 lowest instead of Ex5
    v = _verdicts(_t4([0.99, 0.99, 0.99, 0.98, 0.80, 0.90, 0.70], fn={5: 2}))
    assert not v["Ex5 lowest"]["reproduced"] and not v["mean IoU ex7 (centroid_max)"]["reproduced"]
    # Ex5's misses not merges
    v = _verdicts(_t4(good, fn={5: 4}, merged={5: 1}))
    assert not v["Ex5 misses are merges"]["reproduced"] and v["Ex5 lowest"]["reproduced"]
    # Ex5 low but without any miss
    assert not _verdicts(_t4(good))["Ex5 misses are merges"]["reproduced"]
    # Ex6 as good as the rest
    v = _verdicts(_t4([0.99, 0.99, 0.99, 0.98, 0.80, 0.99, 0.98], fn={5: 4}))
    assert not v["Ex6 below the rest"]["reproduced"]
    assert not v["mean IoU ex6 (centroid_max)"]["reproduced"]
    # a regular scenario under 0.97
    v = _verdicts(_t4([0.99, 0.96, 0.99, 0.98, 0.80, 0.90, 0.98], fn={5: 4}))
    assert not v["mean IoU ex2 (centroid_max)"]["reproduced"]


def test_table4_verdict_compares_other_flows_by_merged_misses_and_spread():
    rows = _t4([0.99] * 4 + [0.8, 0.9, 0.98], fn={5: 3}, seeds=(0, 1))
    rows[8]["mean_iou"] = 0.70                 # ex5, second seed
    rows += _t4([1.0] * 7, flow="heat")
    rows += _t4([1.0] * 7, fn={2: 1}, flow="edt")
    v = _verdicts(rows)
    ex5 = v["mean IoU ex5 (centroid_max)"]
    assert ex5["n_seeds"] == 2 and ex5["ours_mean"] == pytest.approx(0.75)
    assert ex5["ours_spread"] == pytest.approx(0.05)          # standard deviation
    assert v["merged misses, all scenes (heat vs centroid_max)"]["reproduced"]
    assert not v["merged misses, all scenes (edt vs centroid_max)"]["reproduced"]
    fragments = _t4([1.0] * 7, flow="tsdf")
    fragments[0]["fp"] = 99                    # merges gone, but many fragments
    v = _verdicts(rows + fragments)
    assert not v["merged misses, all scenes (tsdf vs centroid_max)"]["reproduced"]


def test_fig5_verdict_on_hand_made_tables():
    def rows(fp05, fn5, iou):
        return [{"eps": 0.5, "tp": 15, "fp": fp05, "fn": 5, "mean_iou": iou[0]},
                {"eps": 1.5, "tp": 18, "fp": 0, "fn": 2, "mean_iou": iou[1]},
                {"eps": 5.0, "tp": 16, "fp": 0, "fn": fn5, "mean_iou": iou[2]}]
    ok = {r["quantity"]: r["reproduced"] for r in studies.fig5_verdict(rows(6, 4, (.7, .9, .8)))}
    assert all(ok.values())
    bad = {r["quantity"]: r["reproduced"]
           for r in studies.fig5_verdict(rows(0, 0, (.95, .9, .8)))}
    assert not bad["FP at eps 0.5"] and not bad["FN at eps 5.0"]
    assert not bad["best mean IoU at eps 1.5"] and not bad["mean IoU at eps 0.5"]


def test_collapse_iteration_and_fig6_verdict():
    assert studies.collapse_iteration([0, 50, 100, 150, 200], [0, .5, .9, .95, .96]) == 150
    assert studies.collapse_iteration([0, 10], [.5, .5]) == 0

    def grid(late):
        # eps 1.5 settles at 20, eps 5 at `late`; eps 0.5 poor early
        out = []
        for n in (0, 20, 50, 100, 150, 200):
            out += [{"seed": 0, "eps": 0.5, "n_iter": n, "mean_iou": 0.1 if n <= 50 else 0.9},
                    {"seed": 0, "eps": 1.5, "n_iter": n, "mean_iou": 0.9 if n >= 20 else 0},
                    {"seed": 0, "eps": 5.0, "n_iter": n, "mean_iou": 0.9 if n >= late else .5}]
        return {r["quantity"][:7]: r for r in studies.fig6_verdict(out)}
    slow, fast = grid(150), grid(50)
    assert slow["N where"]["ours_mean"] == 150 and slow["N where"]["reproduced"]
    assert fast["N where"]["ours_mean"] == 50 and not fast["N where"]["reproduced"]
    assert slow["best me"]["reproduced"] and slow["spread "]["reproduced"]


def test_score_counts_merged_misses():
    truth = np.array([[1, 1, 0, 2, 2, 2, 0, 3, 3]])
    merged = np.array([[4, 4, 0, 4, 4, 4, 0, 5, 5]])   # 1 swallowed by 2's prediction
    s = studies.score(truth, merged)
    assert (s["tp"], s["fn"], s["fn_merged"]) == (2, 1, 1)
    missed = np.array([[0, 0, 0, 4, 4, 4, 0, 5, 5]])   # 1 missed, not merged
    assert studies.score(truth, missed)["fn_merged"] == 0


@pytest.mark.parametrize("argv, message", [
    (["fig7", "--out", "x"], "invalid choice: 'fig7'"),
    (["fig5"], "--out"),
    ([], "study id is required"),
    (["fig5", "--out", "x", "--seeds", "-1"], "--seeds"),
    (["fig5", "--out", "x", "--flow", "magic"], "invalid choice: 'magic'"),
])
def test_reproduce_bad_arguments_exit_nonzero_with_a_message(argv, message, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        reproduce.main(argv)
    assert info.value.code != 0
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
