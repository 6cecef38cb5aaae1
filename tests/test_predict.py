"""Tests for fieldseg_core.predict: post-processing, prediction and evaluation."""

import numpy as np
import pytest
import torch
from torch import nn

from fieldseg_core.data import SyntheticCells, make_target
from fieldseg_core.metrics import evaluate
from fieldseg_core.models import FieldModel, build_model
from fieldseg_core.predict import (
    evaluate_model,
    ideal_output,
    predict_instances,
    predict_representation,
    to_instances,
)
from fieldseg_core.synthetic import random_cells

REPRESENTATIONS = ("poisson", "diffusion", "edt", "flows", "sdf")
TINY = dict(widths=(4, 8), groups=2)


@pytest.fixture(scope="module")
def scene():
    """A clean scene of touching ellipses (some pairs share a border)."""
    labels = random_cells((80, 80), 7, kind="ellipse", radius_range=(7, 10), overlap=0.35,
                          seed=4, placement="clustered")
    a, b = labels[:, :-1], labels[:, 1:]
    assert ((a != b) & (a > 0) & (b > 0)).any(), "the scene should contain touching cells"
    return labels


class Oracle(nn.Module):
    """A 'network' that returns the ideal output of the image it is given."""

    def __init__(self, dataset, representation):
        super().__init__()
        self.lookup = {}
        for i in range(len(dataset)):
            image, target = dataset.sample(i)[:2]
            self.lookup[image.tobytes()] = torch.from_numpy(ideal_output(target, representation))
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return torch.stack([self.lookup[xi.numpy().tobytes()] for xi in x]) + 0 * self.dummy


# --------------------------------------------------------------------------
# post-processing
# --------------------------------------------------------------------------

@pytest.mark.parametrize("representation", REPRESENTATIONS)
def test_ideal_targets_recover_the_labels(scene, representation):
    output = ideal_output(make_target(scene, representation), representation)
    pred = to_instances(output, representation)
    scores = evaluate(scene, pred)
    assert pred.dtype == np.int32 and pred.shape == scene.shape
    assert scores["ap50"] == 1.0
    assert scores["count_error"] == 0
    # eps = 0.05 trims the fast-decaying rim of the diffusion field; the SDF
    # loses the one-pixel gaps between touching cells.
    assert scores["sq"] > 0.8


def test_flow_scale_is_undone(scene):
    target = make_target(scene, "flows")
    base = to_instances(ideal_output(target, "flows"), "flows")
    scaled = to_instances(ideal_output(target, "flows", flow_scale=2.0), "flows", flow_scale=2.0)
    np.testing.assert_array_equal(base, scaled)


def test_flow_probability_channel_is_a_logit(scene):
    output = ideal_output(make_target(scene, "flows"), "flows")
    output[-1] = -0.1                       # sigmoid(-0.1) < 0.5 everywhere: no foreground
    assert to_instances(output, "flows").max() == 0
    output[-1] = 0.1                        # sigmoid(0.1) > 0.5 everywhere ...
    assert (to_instances(output, "flows", prob_threshold=0.6) == 0).all()   # ... but < 0.6


def test_sdf_level_shifts_the_foreground(scene):
    phi = ideal_output(make_target(scene, "sdf"), "sdf")
    base = to_instances(phi, "sdf")
    np.testing.assert_array_equal(to_instances(phi + 0.7, "sdf", level=0.7), base)
    # the foreground is exactly phi > level
    assert ((to_instances(phi, "sdf", level=1.5) > 0) == (phi[0] > 1.5)).all()


def test_sdf_plateau_is_one_marker():
    # A ridge whose two equal peaks are joined by a saddle only 0.5 below them.
    phi = -np.ones((1, 5, 11), np.float32)
    phi[0, 1:4, 1:10] = 1.0
    phi[0, 2, 2:9] = [2.0, 3.0, 2.5, 2.5, 2.5, 3.0, 2.0]
    assert to_instances(phi, "sdf", h=1.0).max() == 1
    assert to_instances(phi, "sdf", h=0.25).max() == 2


def test_scalar_parameters_reach_the_watershed(scene):
    field = ideal_output(make_target(scene, "poisson"), "poisson")
    assert to_instances(field, "poisson", h=1.5).max() == 0      # no dome is 1.5 high
    loose = (to_instances(field, "poisson", eps=0.01) > 0).sum()
    tight = (to_instances(field, "poisson", eps=0.3) > 0).sum()
    assert loose > tight


def test_ideal_output_by_hand():
    target = np.zeros((3, 2, 2), np.float32)
    target[:, 0, 0] = [0.6, -0.8, 1.0]
    out = ideal_output(target, "flows", flow_scale=5.0, logit=4.0)
    np.testing.assert_allclose(out[:, 0, 0], [3.0, -4.0, 4.0])
    np.testing.assert_allclose(out[2, 1], [-4.0, -4.0])
    edt = np.random.default_rng(0).random((1, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(ideal_output(edt, "edt"), edt)


def test_to_instances_rejects_bad_input(scene):
    flows = ideal_output(make_target(scene, "flows"), "flows")
    with pytest.raises(ValueError, match="output must have 3 channels"):
        to_instances(flows[:2], "flows")
    with pytest.raises(ValueError, match="output must have 1 channels"):
        to_instances(flows, "edt")
    with pytest.raises(ValueError, match="representation"):
        to_instances(flows, "stardist")
    with pytest.raises(ValueError, match="output"):
        to_instances(flows[0], "edt")
    with pytest.raises(ValueError, match="finite"):
        to_instances(np.full((1, 4, 4), np.nan), "sdf")
    with pytest.raises(ValueError, match="flow_scale"):
        to_instances(flows, "flows", flow_scale=0.0)


# --------------------------------------------------------------------------
# running a model
# --------------------------------------------------------------------------

def test_predict_representation_is_the_model_output():
    torch.manual_seed(0)
    model = build_model("flows", **TINY)
    image = torch.rand(36, 44)
    model.train()
    out = predict_representation(model, image)
    assert model.training                         # mode restored
    model.eval()
    with torch.no_grad():
        expected = model(image[None, None])[0].numpy()
    assert out.dtype == np.float32 and out.shape == (3, 36, 44)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    # a tile larger than the image is a single untiled pass
    np.testing.assert_allclose(predict_representation(model, image, tile=64), expected, atol=1e-6)


def test_predict_representation_tiles_large_images():
    torch.manual_seed(0)
    model = build_model("edt", **TINY)
    image = np.random.default_rng(0).random((1, 70, 50)).astype(np.float32)
    out = predict_representation(model, image, tile=32, overlap=12)
    assert out.shape == (1, 70, 50) and np.isfinite(out).all()


def test_predict_representation_rejects_bad_input():
    model = build_model("edt", **TINY)
    with pytest.raises(ValueError, match="image"):
        predict_representation(model, np.zeros((2, 3, 8, 8)))
    with pytest.raises(TypeError, match="model"):
        predict_representation(lambda x: x, np.zeros((8, 8)))
    with pytest.raises(ValueError, match="overlap"):
        predict_representation(model, np.zeros((40, 40)), tile=16, overlap=16)


@pytest.mark.parametrize("representation", REPRESENTATIONS)
def test_oracle_model_scores_perfectly(representation):
    ds = SyntheticCells(2, representation, shape=(48, 48), n_cells_range=(3, 4),
                        radius_range=(6, 8), kinds=("ellipse",), augment=False, seed=1)
    model = FieldModel(Oracle(ds, representation), representation)
    labels = predict_instances(model, ds[0][0])
    assert evaluate(ds.labels(0), labels)["ap50"] == 1.0
    scores = evaluate_model(model, ds)
    assert scores["n_images"] == 2
    assert scores["ap50"] == 1.0 and scores["rq"] == 1.0
    for key in ("iou", "dice", "pq", "sq"):
        assert 0.8 < scores[key] <= 1.0


def test_evaluate_model_is_the_mean_of_per_image_scores():
    ds = SyntheticCells(3, "edt", shape=(40, 40), n_cells_range=(2, 3), radius_range=(5, 7),
                        augment=False, seed=2)
    torch.manual_seed(1)
    model = build_model("edt", **TINY)
    scores = evaluate_model(model, ds)
    rows = [evaluate(ds.labels(i), predict_instances(model, ds[i][0])) for i in range(3)]
    for key in ("iou", "dice", "pq", "sq", "rq", "ap50"):
        assert scores[key] == pytest.approx(np.mean([r[key] for r in rows]))
    assert evaluate_model(model, ds, max_images=1)["n_images"] == 1


def test_predict_instances_uses_the_learned_sigmoid_offset():
    ds = SyntheticCells(1, "sdf", shape=(40, 40), n_cells_range=(2, 2), radius_range=(6, 7),
                        augment=False)
    model = FieldModel(Oracle(ds, "sdf"), "sdf")
    image = ds[0][0]
    with torch.no_grad():
        model.sigmoid.alpha.fill_(2.0)
        model.sigmoid.beta.fill_(-5.0)          # sigma > 1/2 where phi > 2.5
    labels = predict_instances(model, image)
    phi = predict_representation(model, image)
    np.testing.assert_array_equal(labels > 0, phi[0] > 2.5)
    np.testing.assert_array_equal(labels, to_instances(phi, "sdf", level=2.5))


def test_predict_and_evaluate_reject_bad_input():
    model = build_model("edt", **TINY)
    with pytest.raises(ValueError, match="does not match"):
        predict_instances(model, np.zeros((16, 16)), "flows")
    with pytest.raises(ValueError, match="representation"):
        predict_instances(nn.Conv2d(1, 1, 1), np.zeros((16, 16)))
    with pytest.raises(TypeError, match="labels"):
        evaluate_model(model, [(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8))])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_predict_on_cuda_matches_cpu():
    torch.manual_seed(0)
    model = build_model("flows", **TINY)
    image = torch.rand(32, 32)
    cpu = predict_representation(model, image, device="cpu")
    gpu = predict_representation(model, image, device="cuda")
    np.testing.assert_allclose(cpu, gpu, atol=1e-4)
