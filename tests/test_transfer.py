"""Few-shot transfer: crop dataset, the four settings, fine-tuning, the correction round."""

from collections import namedtuple

import numpy as np
import pytest
import torch

from fieldseg_core import pretrained
from fieldseg_core.data import make_target
from fieldseg_core.datasets import nuclei_2d_split
from fieldseg_core.models import TileSafeNorm
from fieldseg_core.train import loss_for
from fieldseg_core.transfer import (
    CropDataset,
    correct_worst,
    fine_tune,
    prepare,
    score_crops,
)

C = namedtuple("C", ["image", "labels"])


@pytest.fixture(scope="module")
def flows_model():
    return pretrained.load("flows_unet")


@pytest.fixture(scope="module")
def crops():
    return nuclei_2d_split()


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_crop_dataset_moves_image_and_target_together(crops):
    lab = crops["train"][0].labels
    ds = CropDataset([(lab > 0).astype(np.float32)], [lab], "flows", patch=64, n_items=8, seed=3)
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            image, target = ds[i]
            # the probability channel is the foreground, however the patch was flipped/turned
            np.testing.assert_array_equal(target[-1].numpy(), image[0].numpy())
            # unit flows inside cells
            norm = target[:2].norm(dim=0)[image[0] > 0]
            assert torch.all(norm <= 1 + 1e-5)
    ds.set_epoch(0)
    a, b = ds[2], CropDataset([(lab > 0) * 1.0], [lab], "flows", patch=64, n_items=8, seed=3)[2]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])       # reproducible
    ds.set_epoch(1)
    assert not torch.equal(ds[2][0], a[0])                            # new patches each epoch
    # the whole crop with no transform is exactly make_target of the crop
    full = CropDataset([lab * 1.0], [lab], "poisson", patch=128, n_items=1)
    np.testing.assert_allclose(np.sort(full[0][1].numpy().ravel()),
                               np.sort(make_target(lab, "poisson").ravel()), atol=1e-6)
    with pytest.raises(ValueError, match="patch"):
        CropDataset([lab * 1.0], [lab], "flows", patch=200)
    with pytest.raises(ValueError, match="shape"):
        CropDataset([lab[:10] * 1.0], [lab], "flows", patch=8)


def test_settings(flows_model):
    before = _params(flows_model)
    zero = prepare(flows_model, "zero-shot")
    assert all(torch.equal(v, zero.state_dict()[k]) for k, v in before.items())
    frozen = prepare(flows_model, "frozen-encoder", seed=1)
    net = frozen.backbone
    for name, p in frozen.named_parameters():
        encoder = name.startswith(("backbone.encoder", "backbone.downs", "backbone.bottleneck"))
        assert p.requires_grad != encoder
        if encoder:
            assert torch.equal(p, before[name])
    assert not torch.equal(net.head.weight, before["backbone.head.weight"])   # fresh head
    assert all(m.frozen for m in net.encoder.modules() if isinstance(m, TileSafeNorm))
    assert not any(m.frozen for m in net.decoder.modules() if isinstance(m, TileSafeNorm))
    full = prepare(flows_model, "full")
    assert all(p.requires_grad for p in full.parameters())
    assert all(m.frozen for m in full.modules() if isinstance(m, TileSafeNorm))
    scratch = prepare(flows_model, "scratch", seed=0)
    assert not any(m.frozen for m in scratch.modules() if isinstance(m, TileSafeNorm))
    assert not torch.equal(scratch.backbone.head.weight, before["backbone.head.weight"])
    assert float(scratch.backbone.encoder[0].norm1.running_var.mean()) == 1.0   # fresh statistics
    # the pretrained model itself is untouched
    assert all(torch.equal(v, flows_model.state_dict()[k]) for k, v in before.items())
    assert all(p.requires_grad for p in flows_model.parameters())
    with pytest.raises(ValueError, match="setting"):
        prepare(flows_model, "linear-probe")
    # a model without a recorded configuration: every layer of a copy is reset
    plain = transfer_copy = prepare(flows_model, "full")
    del plain.model_config
    fresh = prepare(transfer_copy, "scratch", seed=0)
    assert not torch.equal(fresh.backbone.head.weight, before["backbone.head.weight"])
    assert not any(m.frozen for m in fresh.modules() if isinstance(m, TileSafeNorm))
    assert float(fresh.backbone.encoder[0].norm1.running_var.mean()) == 1.0


def test_frozen_encoder_training_moves_only_the_decoder(flows_model, crops):
    c = crops["train"][0]
    before = _params(flows_model)
    model, hist = fine_tune(flows_model, [c.image], [c.labels], setting="frozen-encoder",
                            epochs=2, n_items=4, batch_size=2, patch=64)
    after = model.state_dict()
    for k, v in after.items():
        if k.startswith(("backbone.encoder", "backbone.downs")):
            assert torch.equal(v, before[k]), k                   # weights and running statistics
    assert not torch.equal(after["backbone.decoder.0.conv1.weight"],
                           before["backbone.decoder.0.conv1.weight"])
    assert hist[-1]["total_seconds"] > 0


def test_full_fine_tuning_lowers_the_loss_on_its_crop(flows_model, crops):
    c = crops["train"][1]
    image = torch.from_numpy(c.image)[None, None]
    target = torch.from_numpy(make_target(c.labels, "flows"))[None]
    loss = loss_for("flows")
    with torch.no_grad():
        start = float(loss(flows_model(image), target, flows_model))
    model, _ = fine_tune(flows_model, [c.image], [c.labels], setting="full", epochs=6,
                         n_items=8, batch_size=4, patch=96)
    with torch.no_grad():
        end = float(loss(model(image), target, model))
    assert end < 0.9 * start


def test_correct_worst_fixes_missed_and_merged_cells():
    true = np.zeros((10, 20), int)
    true[1:5, 1:5], true[1:5, 6:10], true[1:5, 12:16], true[6:9, 1:9] = 1, 2, 3, 4
    pred = np.zeros_like(true)
    pred[1:5, 1:10] = 7                   # cells 1 and 2 merged
    pred[1:5, 12:16] = 9                  # cell 3 right
    # cell 4 missed (IoU 0) is the worst, then the merged pair (IoU 16/36)
    corrected, fixed = correct_worst(true, pred, n=1)
    assert fixed.tolist() == [4]
    assert np.array_equal(corrected > 0, (pred > 0) | (true == 4))
    corrected, fixed = correct_worst(true, pred, n=2)
    assert fixed[0] == 4 and fixed[1] in (1, 2)
    # the merged blob is removed where a corrected cell touches it; the true cell pasted
    from fieldseg_core.metrics import evaluate
    assert evaluate(true, correct_worst(true, pred, n=4)[0])["ap90"] == 1.0
    same, none = correct_worst(true, pred, n=0)
    assert none.size == 0 and evaluate(pred, same)["ap90"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        correct_worst(true, pred[:5])


def test_score_crops_on_perfect_and_empty_predictions(crops):
    test = crops["test"]
    perfect = score_crops(lambda im: next(c.labels for c in test if c.image is im), test)
    assert perfect["ap50"] == perfect["pq"] == perfect["seg"] == 1.0
    assert perfect["count_error"] == 0 and perfect["n_crops"] == 6
    empty = score_crops(lambda im: np.zeros(im.shape, np.int32), test)
    assert empty["ap50"] == 0 and empty["count_error"] == -np.mean([c.labels.max() for c in test])
