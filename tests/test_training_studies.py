"""Tests for fieldseg_core.training_studies: row contract, verdict logic on hand-made tables, tiny runs."""

import numpy as np
import pytest
import torch

from fieldseg_core import flows, training_studies as ts
from fieldseg_core.data import SyntheticCells

KEYS = {"study", "quantity", "paper", "ours_mean", "ours_spread", "n_seeds", "reproduced", "reason"}


def check_rows(rows, study):
    assert rows
    for row in rows:
        assert KEYS <= set(row)
        assert row["study"] == study
        assert isinstance(row["reproduced"], bool)
        assert row["paper"] is None or np.isfinite(row["paper"])
        assert np.isfinite(row["ours_mean"]) and row["ours_spread"] >= 0
        assert row["reason"] and "\n" not in row["reason"]
        assert "seed " not in row["reason"].lower() and "seed " not in row["quantity"].lower()


def by_quantity(rows, *texts):
    found = [r for r in rows if all(t in r["quantity"] for t in texts)]
    assert len(found) == 1, [r["quantity"] for r in rows]
    return found[0]


# ---------------------------------------------------------------------------
# vector fields (Peters)
# ---------------------------------------------------------------------------

def peters_results(tsdf_map, edt_map, no_ivp_map=None, count_mae=0.2, mean_count=5.0):
    """Hand-made results: per-seed mAP curves; AP50/75/90 set to the same curve."""
    def curves(m):
        m = np.asarray(m, float)
        return {"ap50": m, "ap75": m, "ap90": m, "map": m, "count_mae": np.full(m.shape, count_mae),
                "train_loss": np.ones(m.shape)}
    no_ivp = tsdf_map if no_ivp_map is None else no_ivp_map
    return {"curves": {"tSDF, IVP + MSE + Tversky": curves(tsdf_map),
                       "tSDF, MSE + Tversky": curves(no_ivp),
                       "EDT, IVP + MSE + Tversky": curves(edt_map),
                       "EDT, MSE + Tversky": curves(edt_map)},
            "mean_count": mean_count}


FAST = [[0.2, 0.7, 0.8, 0.8], [0.3, 0.75, 0.8, 0.82]]
SLOW = [[0.1, 0.2, 0.5, 0.78], [0.1, 0.3, 0.6, 0.79]]


def test_epochs_to_reach():
    assert ts.epochs_to_reach([0.1, 0.5, 0.4, 0.9], 0.5) == 2
    assert ts.epochs_to_reach([0.1, 0.2], 0.5) == 3
    assert ts.epochs_to_reach([0.6], 0.5) == 1


def test_vector_fields_verdict_flips_with_the_curves():
    rows = ts.verdict_vector_fields(peters_results(FAST, SLOW))
    check_rows(rows, "vector_fields")
    conv = by_quantity(rows, "epochs to mAP", "(IVP + MSE")
    # level = 0.9 * min(0.81, 0.785) = 0.7065: tSDF at epochs 3, 2; EDT at 4, 4
    assert "0.70" in conv["quantity"]
    assert conv["ours_mean"] == pytest.approx(np.mean([3 - 4, 2 - 4]))
    assert conv["reproduced"] is True
    assert by_quantity(rows, "final mAP: tSDF minus EDT")["reproduced"] is True
    flipped = ts.verdict_vector_fields(peters_results(SLOW, FAST))
    assert by_quantity(flipped, "epochs to mAP", "(IVP + MSE")["reproduced"] is False
    assert by_quantity(flipped, "final mAP: tSDF minus EDT")["reproduced"] is False
    assert by_quantity(flipped, "mAP averaged over epochs: tSDF minus EDT (IVP")["reproduced"] is False


def test_vector_fields_verdict_ivp_and_counting():
    rows = ts.verdict_vector_fields(peters_results(FAST, SLOW, no_ivp_map=SLOW, count_mae=0.4))
    ivp = by_quantity(rows, "with minus without IVP")
    assert ivp["ours_mean"] == pytest.approx(np.mean([0.8 - 0.78, 0.82 - 0.79]))
    assert ivp["reproduced"] is True
    assert by_quantity(rows, "count MAE")["reproduced"] is True          # 0.4 <= 0.5
    rows = ts.verdict_vector_fields(peters_results(SLOW, FAST, no_ivp_map=FAST, count_mae=0.6))
    assert by_quantity(rows, "with minus without IVP")["reproduced"] is False
    count = by_quantity(rows, "count MAE")
    assert count["reproduced"] is False and count["paper"] == pytest.approx(2.04)


def test_vector_field_cells_targets():
    cells = SyntheticCells(3, "edt", shape=(40, 40), n_cells_range=(2, 4), radius_range=(5, 8), seed=4)
    for field, fn in (("tsdf", lambda l: flows.tsdf_flows(l, 10, 11, normalize=False)),
                      ("edt", flows.edt_flows)):
        ds = ts.VectorFieldCells(cells, field)
        ds.set_epoch(2)
        image, target = ds[1]
        labels = ds.labels(1)
        assert np.allclose(target[:2].numpy(), fn(labels))
        assert np.array_equal(target[2].numpy(), (labels > 0).astype(np.float32))
        assert torch.equal(image, cells[1][0])
    with pytest.raises(ValueError, match="field"):
        ts.VectorFieldCells(cells, "heat")
    with pytest.raises(TypeError, match="cells"):
        ts.VectorFieldCells([1, 2], "edt")


def test_vector_fields_tiny_run():
    cfg = dict(size=32, n_train=4, n_test=2, epochs=2, batch_size=2, lr=3e-3, widths=(4, 8),
               kinds=("disk",), n_cells_range=(2, 3), radius_range=(4.0, 6.0), ivp_points=64)
    res = ts.study_vector_fields(cfg, seeds=(0,), configs=("tSDF, IVP + MSE + Tversky",
                                                           "EDT, IVP + MSE + Tversky"))
    c = res["curves"]["tSDF, IVP + MSE + Tversky"]
    assert c["map"].shape == (1, 2)
    assert np.allclose(c["map"], (c["ap50"] + c["ap75"] + c["ap90"]) / 3)
    assert np.all((c["map"] >= 0) & (c["map"] <= 1))
    check_rows(ts.verdict_vector_fields(res), "vector_fields")
    with pytest.raises(ValueError, match="configs"):
        ts.study_vector_fields(cfg, seeds=(0,), configs=("heat",))
    with pytest.raises(ValueError, match="seeds"):
        ts.study_vector_fields(cfg, seeds=())


# ---------------------------------------------------------------------------
# SDF ablation
# ---------------------------------------------------------------------------

def sdf_results(seg, bf1=None):
    """seg: {variant: per-seed list} for one convention."""
    bf1 = seg if bf1 is None else bf1
    return {"scores": {("between", v): {"seg": np.array(s, float), "bf1": np.array(bf1[v], float)}
                       for v, s in seg.items()}}


def test_sdf_verdict_flips():
    good = {"CE + LSE": [0.7, 0.72], "CE + LSE + L-MHD": [0.71, 0.7], "CE + LSE + R-MHD": [0.69, 0.7],
            "all four": [0.75, 0.74]}
    rows = ts.verdict_sdf_ablation(sdf_results(good))
    check_rows(rows, "sdf_ablation")
    full = by_quantity(rows, "SEG, all four [between]")
    assert full["reproduced"] is True and full["paper"] == pytest.approx(0.944)
    gain = by_quantity(rows, "over CE + LSE [between]")
    assert gain["ours_mean"] == pytest.approx(np.mean([0.05, 0.02]))
    assert gain["reproduced"] is True and gain["paper"] == pytest.approx(0.944 - 0.901)
    assert by_quantity(rows, "boundary F1")["reproduced"] is True
    bad = dict(good, **{"CE + LSE": [0.8, 0.8]})
    rows = ts.verdict_sdf_ablation(sdf_results(bad, bf1=good))
    assert by_quantity(rows, "SEG, all four")["reproduced"] is False
    assert by_quantity(rows, "over CE + LSE [")["reproduced"] is False
    assert by_quantity(rows, "over CE + LSE + L-MHD")["reproduced"] is True
    assert by_quantity(rows, "boundary F1")["reproduced"] is True
    with pytest.raises(ValueError, match="all four"):
        ts.verdict_sdf_ablation(sdf_results({"CE + LSE": [0.5]}))


def test_sdf_ablation_tiny_run():
    cfg = dict(size=32, n_train=4, n_test=2, epochs=1, batch_size=2, lr=5e-3, widths=(4, 8),
               kinds=("disk",), n_cells_range=(2, 3), radius_range=(4.0, 6.0))
    res = ts.study_sdf_ablation(cfg, seeds=(0,), variants=("CE + LSE", "all four"))
    assert set(res["scores"]) == {(c, v) for c in ("between", "on_pixels") for v in ("CE + LSE", "all four")}
    for s in res["scores"].values():
        assert 0 <= s["seg"][0] <= 1 and 0 <= s["bf1"][0] <= 1
    rows = ts.verdict_sdf_ablation(res)
    check_rows(rows, "sdf_ablation")
    assert len(rows) == 2 * 3
    with pytest.raises(ValueError, match="conventions"):
        ts.study_sdf_ablation(cfg, seeds=(0,), conventions=("centre",))


# ---------------------------------------------------------------------------
# scalar fields (Ruiz Vargas et al.)
# ---------------------------------------------------------------------------

def scalar_results(poisson_att, diffusion_unet, poisson_unet, gap=0.0):
    def scores(v):
        return {m: np.array(v, float) for m in ts.SCALAR_METRICS}
    s = {("diffusion", "unet"): scores(diffusion_unet), ("poisson", "attention"): scores(poisson_att),
         ("poisson", "unet"): scores(poisson_unet)}
    default = {k: {m: v[m] - gap for m in v} for k, v in s.items()}
    return {"scores": s, "default": default}


def test_paper_table_means():
    # PQ: diffusion 0.8172, Poisson 0.8363 (means over the nine datasets of Table 1)
    d, p = (np.mean(v) for v in ts.RUIZ_VARGAS_TABLE1["pq"])
    assert d == pytest.approx(0.81723, abs=1e-4) and p == pytest.approx(0.83634, abs=1e-4)
    assert all(len(v) == 9 for pair in ts.RUIZ_VARGAS_TABLE1.values() for v in pair)


def test_scalar_verdict_flips():
    rows = ts.verdict_scalar_fields(scalar_results([0.8, 0.82], [0.7, 0.75], [0.78, 0.8]))
    check_rows(rows, "scalar_fields")
    pq = by_quantity(rows, "PQ: Poisson")
    assert pq["paper"] > 0 and pq["reproduced"] is True
    assert pq["ours_mean"] == pytest.approx(np.mean([0.1, 0.07]))
    assert by_quantity(rows, "PQ: attention minus plain")["reproduced"] is True
    assert by_quantity(rows, "validation-tuned")["reproduced"] is True
    rows = ts.verdict_scalar_fields(scalar_results([0.6, 0.62], [0.7, 0.75], [0.78, 0.8], gap=0.05))
    assert by_quantity(rows, "PQ: Poisson")["reproduced"] is False
    assert by_quantity(rows, "PQ: attention minus plain")["reproduced"] is False
    tuned = by_quantity(rows, "validation-tuned")
    assert tuned["reproduced"] is False and tuned["ours_mean"] == pytest.approx(0.05)


def test_scalar_fields_tiny_run():
    cfg = dict(size=32, n_train=4, n_val=2, n_test=2, epochs=1, batch_size=2, lr=3e-3, widths=(4, 8),
               heads=2, layers=1, kinds=("disk",), n_cells_range=(2, 3), radius_range=(4.0, 6.0))
    res = ts.study_scalar_fields(cfg, seeds=(0,), models=(("poisson", "attention"), ("diffusion", "unet"),
                                                         ("poisson", "unet")))
    for key, (eps, h) in ((k, v[0]) for k, v in res["chosen"].items()):
        assert eps in ts.WATERSHED_GRID["eps"] and h in ts.WATERSHED_GRID["h"]
    check_rows(ts.verdict_scalar_fields(res), "scalar_fields")
    header, rows = ts.scalar_fields_table(res)
    assert len(header) == 4 and [r[0] for r in rows] == ["IoU", "Dice", "PQ", "SQ", "RQ"]


def test_size_validation_and_missing_curves():
    with pytest.raises(ValueError, match="size"):
        ts.study_vector_fields("huge", seeds=(0,))
    with pytest.raises(ValueError, match="missing"):
        ts.study_sdf_ablation({"size": 32}, seeds=(0,))
    with pytest.raises(TypeError, match="size"):
        ts.study_scalar_fields(3, seeds=(0,))
    results = peters_results(FAST, SLOW)
    del results["curves"]["EDT, IVP + MSE + Tversky"]
    with pytest.raises(ValueError, match="EDT, IVP"):
        ts.verdict_vector_fields(results)


def test_registry():
    assert set(ts.REPRODUCTIONS) == {"vector_fields", "sdf_ablation", "scalar_fields"}
    for name, (description, run) in ts.REPRODUCTIONS.items():
        assert callable(run) and description and "seed" not in description.lower()
