"""Tests for the loss recipes of the training studies (SDF conventions, ablation, CE-only, Peters)."""

import functools
import math

import numpy as np
import pytest
import torch

from fieldseg_core import fields, losses, models, train


def sdf_batch():
    labels = np.zeros((16, 20), dtype=int)
    labels[3:12, 2:10] = 1
    labels[3:12, 10:17] = 2
    phi = fields.signed_distance_field(labels, truncation=10)
    return torch.from_numpy(phi)[None, None]


def test_convention_between_is_identity():
    phi = sdf_batch()
    shifted, inside = losses.sdf_convention_targets(phi, "between")
    assert torch.equal(shifted, phi)
    assert torch.equal(inside, (phi > 0).float())


def test_convention_on_pixels_hand_values():
    phi = torch.tensor([[[[-3.0, -1.0, 1.0, math.sqrt(2), 2.0, 4.0]]]])
    shifted, inside = losses.sdf_convention_targets(phi, "on_pixels")
    expected = [-3.0, -1.0, 0.0, math.sqrt(2) - 1, 1.0, 3.0]
    assert shifted.flatten().tolist() == pytest.approx(expected)
    assert inside.flatten().tolist() == [0.0, 0.0, 0.5, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="convention"):
        losses.sdf_convention_targets(phi, "centre")


def test_ablation_loss_default_equals_training_loss():
    phi = sdf_batch()
    torch.manual_seed(0)
    model = models.build_model("sdf", widths=(4, 8), groups=2)
    with torch.no_grad():
        model.sigmoid.alpha.fill_(2.5)
        model.sigmoid.beta.fill_(0.3)
    pred = phi * 0.7 + 0.2 * torch.randn_like(phi)
    with torch.no_grad():
        expected = train.loss_for("sdf")(pred, phi, model)
        got = losses.sdf_ablation_loss(pred, phi, model)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


def test_ablation_loss_switches_terms_off():
    phi = sdf_batch()
    pred = 0.5 * phi
    sig = models.LearnableSigmoid(4.0, 0.0)
    model = torch.nn.Module()
    model.sigmoid = sig
    lse = losses.tanh_lsq_loss(pred, phi, sig, reduction="mean")
    ce = losses.sdf_cross_entropy(pred, (phi > 0).float(), sig, reduction="mean")
    got = losses.sdf_ablation_loss(pred, phi, model, weights=(0, 0, 1, 1))
    assert float(got) == pytest.approx(float(lse + ce), rel=1e-6)
    left, right = losses.modified_hausdorff_terms(pred, phi, sig, reduction="mean")
    got = losses.sdf_ablation_loss(pred, phi, model, weights=(0.9, 0, 0, 0))
    assert float(got) == pytest.approx(0.9 * float(left), rel=1e-6)
    # on_pixels: the distance terms see phi - 1 inside
    shifted, inside = losses.sdf_convention_targets(phi, "on_pixels")
    got = losses.sdf_ablation_loss(pred, phi, model, weights=(0, 0, 1, 0), convention="on_pixels")
    assert float(got) == pytest.approx(float(losses.tanh_lsq_loss(pred, shifted, sig, reduction="mean")))


def test_ce_only_loss_hand_value():
    # plain logistic (no model): two pixels at phi_pred = 0 -> log 2 each; mean log 2
    out = torch.zeros(1, 1, 1, 2)
    target = torch.tensor([[[[-2.0, 3.0]]]])
    assert float(losses.sdf_ce_only_loss(out, target)) == pytest.approx(math.log(2))
    # a confident correct prediction: -log(sigmoid(10)) on both pixels
    out = torch.tensor([[[[-10.0, 10.0]]]])
    assert float(losses.sdf_ce_only_loss(out, target)) == pytest.approx(math.log1p(math.exp(-10)), rel=1e-2)


def test_vector_field_loss_parts():
    torch.manual_seed(0)
    target = torch.zeros(2, 3, 12, 12)
    target[:, 2, 3:9, 3:9] = 1
    target[:, :2] = torch.randn(2, 2, 12, 12) * target[:, 2:]
    output = torch.randn(2, 3, 12, 12)
    total, parts = losses.vector_field_loss(output, target, return_parts=True)
    mse = torch.nn.functional.mse_loss(output[:, :2], target[:, :2])
    assert float(parts["mse"]) == pytest.approx(float(mse))
    assert float(parts["tversky"]) == pytest.approx(float(losses.tversky_loss(output[:, 2:], target[:, 2:])))
    ivp = losses.ivp_loss(output[:, :2], target[:, :2], target[:, 2] > 0.5, n_iter=25, step=0.1)
    assert float(parts["ivp"]) == pytest.approx(float(ivp))
    assert float(total) == pytest.approx(float(ivp + mse + parts["tversky"]))
    no_ivp = losses.vector_field_loss(output, target, weights=(0, 1, 1))
    assert float(no_ivp) == pytest.approx(float(mse + parts["tversky"]))
    # the true field gives zero IVP and MSE
    perfect = torch.cat([target[:, :2], 50 * (2 * target[:, 2:] - 1)], 1)
    _, parts = losses.vector_field_loss(perfect, target, return_parts=True)
    assert float(parts["ivp"]) == 0.0 and float(parts["mse"]) == 0.0


def test_vector_field_loss_trains_through_train():
    from fieldseg_core.data import SyntheticCells
    from fieldseg_core.training_studies import VectorFieldCells

    cells = SyntheticCells(4, "edt", shape=(32, 32), n_cells_range=(2, 3), radius_range=(4, 6))
    ds = VectorFieldCells(cells, "tsdf")
    torch.manual_seed(0)
    model = models.build_model("flows", widths=(4, 8), groups=2)
    history = train.train(model, ds, loss=functools.partial(losses.vector_field_loss, max_points=64),
                          epochs=2, batch_size=2, device="cpu", progress=False)
    assert all(np.isfinite(r["train_loss"]) for r in history)


def test_vector_field_loss_validation():
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ValueError, match="weights"):
        losses.vector_field_loss(x, x, weights=(1, 1))
    with pytest.raises(ValueError, match="weights"):
        losses.vector_field_loss(x, x, weights=(-1, 1, 1))
    with pytest.raises(ValueError, match="channels"):
        losses.vector_field_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))
