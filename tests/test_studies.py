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
SCORE_KEYS = {"n_true", "n_pred", "tp", "fp", "fn", "ap50", "mean_iou", "mean_matched_iou"}


def check_counts(row):
    """Invariants every scored row must satisfy."""
    assert row["tp"] + row["fn"] == row["n_true"]
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
    assert ids == list(reproduce.STUDIES)
    assert {"table4", "fig5", "fig6", "flows"} <= set(ids)


def test_reproduce_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "fieldseg_core.reproduce", "--list"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == list(reproduce.STUDIES)


def test_reproduce_fig5_writes_png_and_csv_with_paper_columns(tmp_path, capsys):
    out = tmp_path / "results"
    assert reproduce.main(["fig5", "--out", str(out), "--quick", "--quiet"]) == 0
    png = (out / "fig5.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    rows = read_csv(out / "fig5.csv")
    assert [float(r["eps"]) for r in rows] == [0.5, 1.5, 5.0]
    for r in rows:
        paper = studies.PAPER_FIG5[float(r["eps"])]
        assert float(r["paper_mean_iou"]) == pytest.approx(paper["mean_iou"])
        for k in ("tp", "fp", "fn"):
            assert r[f"paper_{k}"] == ("" if paper[k] is None else str(paper[k]))
        assert int(r["tp"]) + int(r["fn"]) == int(r["n_true"]) == 20
    # the CSV holds what the study returns
    direct = studies.epsilon_stress_test(device="cpu", progress=False)
    assert [int(r["fp"]) for r in rows] == [d["fp"] for d in direct]
    assert "fig5.png" in capsys.readouterr().out


def test_reproduce_fig6_quick_grid(tmp_path):
    assert reproduce.main(["fig6", "--out", str(tmp_path), "--quick", "--quiet"]) == 0
    rows = read_csv(tmp_path / "fig6.csv")
    assert {(int(r["n_iter"]), float(r["eps"])) for r in rows} == {
        (n, e) for n in (0, 10, 20, 50) for e in (0.5, 1.5)}
    assert (tmp_path / "fig6.png").stat().st_size > 10_000


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
