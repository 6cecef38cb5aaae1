"""Exact tiling: a U-Net with running-statistics normalisation, tiles on its pooling grid."""

import numpy as np
import pytest
import torch

from fieldseg_core.models import (
    TileSafeNorm,
    build_model,
    downsampling_factor,
    receptive_field_margin,
)
from fieldseg_core.predict import (
    aligned_tile_starts,
    exact_overlap,
    predict_representation,
    predict_tiled_aligned,
    seam_distance,
)


def _trained_stats(model, seed=0):
    """Give the norms non-trivial running statistics, as training would."""
    torch.manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 1, 48, 48) * 2.0 + 0.3)
    return model.eval()


def _image(shape, seed=0):
    return np.random.default_rng(seed).random((1,) + shape).astype(np.float32)


UNETS = [
    dict(widths=(8, 16, 32)),
    dict(widths=(4, 8, 16, 32), upsample="bilinear"),
    dict(widths=(4, 8), downsample="stride", residual=False),
]


@pytest.mark.parametrize("kwargs", UNETS)
def test_tiled_equals_untiled_with_exact_overlap(kwargs):
    torch.manual_seed(1)
    model = _trained_stats(build_model("flows", **kwargs))
    overlap = exact_overlap(model)
    assert overlap >= 2 * receptive_field_margin(model)
    assert overlap % downsampling_factor(model) == 0
    tile = overlap + 3 * downsampling_factor(model) + 16
    image = _image((2 * tile + 13, 3 * tile - 5))
    whole = predict_representation(model, image)
    tiled = predict_representation(model, image, tile=tile, overlap="exact")
    plan = aligned_tile_starts(image.shape[1], tile, overlap, downsampling_factor(model))
    assert len(plan) >= 3                              # several seams per axis
    np.testing.assert_allclose(tiled, whole, atol=1e-4, rtol=0)


def test_small_overlap_errs_only_near_seams():
    torch.manual_seed(2)
    model = _trained_stats(build_model("edt", widths=(8, 16, 32)))
    margin, grid = receptive_field_margin(model), downsampling_factor(model)
    image = 10 * _image((160, 160), seed=3)
    whole = predict_representation(model, image)[0]
    tiled = predict_representation(model, image, tile=64, overlap=8)[0]
    err = np.abs(tiled - whole)
    assert err.max() > 1e-4                            # too small an overlap is not exact
    dist = seam_distance((160, 160), 64, 8, grid)
    plan = aligned_tile_starts(160, 64, 8, grid)
    cuts = [k1 for _, _, _, k1 in plan[:-1]]
    assert dist[cuts[0], 100] == 0 and dist[cuts[0] - 1, 100] == 0 and dist[cuts[0] + 1, 100] == 1
    # a kept pixel farther than the margin from every seam sees only its own tile's content
    far = dist > margin
    assert far.any() and err[far].max() < 1e-5


def test_groupnorm_is_not_tile_consistent():
    torch.manual_seed(3)
    model = build_model("edt", widths=(8, 16, 32), norm="group").eval()
    assert receptive_field_margin(model) is None and exact_overlap(model) is None
    image = _image((128, 128))
    whole = predict_representation(model, image)[0]
    tiled = predict_representation(model, image, tile=96, overlap=64)[0]
    # even at a tile's centre, the tile's own statistics change the output
    assert np.abs(tiled - whole)[60:68, 60:68].max() > 1e-3


def test_attention_unet_is_global():
    torch.manual_seed(4)
    model = _trained_stats(build_model("edt", arch="attention", widths=(8, 16, 32), heads=2))
    assert receptive_field_margin(model) is None
    with pytest.raises(ValueError, match="overlap"):
        predict_representation(model, _image((64, 64)), tile=32, overlap="exact")
    local = _trained_stats(build_model("edt", widths=(8, 16, 32)))
    x = torch.rand(1, 1, 96, 96, dtype=torch.float64)
    y = x.clone()
    y[..., 90:, 90:] += 5.0                            # far corner, 50 px from the centre
    with torch.no_grad():
        for net, moves in ((model, True), (local, False)):
            net = net.double()
            change = float((net(y) - net(x))[0, 0, 40:48, 40:48].abs().max())
            assert (change > 0) == moves


def _farthest_influence(model, margin, grid):
    """Largest |output row - input row| over rows whose perturbation moves the output."""
    size = 4 * margin + 4 * grid
    x = torch.rand(1, 1, size, 4 * grid, dtype=torch.float64)
    rows = slice(2 * margin, 2 * margin + grid)        # every phase of the pooling grid
    seen = 0
    with torch.no_grad():
        base = model(x)[0, 0, rows]
        for q in range(size):
            y = x.clone()
            y[0, 0, q] += 50.0
            moved = (model(y)[0, 0, rows] - base).abs().amax(dim=1) > 0
            for r in np.flatnonzero(moved.numpy()):
                seen = max(seen, abs(2 * margin + int(r) - q))
    return seen


@pytest.mark.parametrize("kwargs", [dict(widths=(8, 16, 32)),
                                    dict(widths=(4, 8, 16), upsample="bilinear"),
                                    dict(widths=(4, 8), downsample="stride", residual=False)])
def test_margin_is_the_receptive_field(kwargs):
    torch.manual_seed(5)
    model = _trained_stats(build_model("edt", **kwargs)).double()
    margin, grid = receptive_field_margin(model), downsampling_factor(model)
    # random weights: influence never reaches beyond the margin (exact zeros)
    assert _farthest_influence(model, margin, grid) <= margin
    # positive weights (no cancellation): the network sees exactly the margin
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.abs() + 0.05)
    assert _farthest_influence(model, margin, grid) == margin


def test_aligned_tiles_partition_and_align():
    for length in (1, 7, 64, 65, 100, 257):
        plan = aligned_tile_starts(length, 48, 20, multiple=8)
        kept = np.concatenate([np.arange(k0, k1) for _, _, k0, k1 in plan])
        np.testing.assert_array_equal(kept, np.arange(length))
        for a, b, k0, k1 in plan:
            assert a % 8 == 0 and a <= k0 < k1 <= b <= length
            inner_lo = k0 - a if a > 0 else np.inf
            inner_hi = b - k1 if b < length else np.inf
            assert min(inner_lo, inner_hi) >= 12       # overlap rounded to 24, cut in half
    with pytest.raises(ValueError, match="overlap"):
        aligned_tile_starts(100, 32, 30, multiple=8)
    with pytest.raises(ValueError, match="tile"):
        aligned_tile_starts(100, 4, 0, multiple=8)


def test_predict_tiled_aligned_3d_and_errors():
    from scipy import ndimage

    vol = np.random.default_rng(0).random((2, 30, 41, 37))
    blur = lambda x: ndimage.uniform_filter(x, size=(1, 3, 3, 3), mode="nearest")  # noqa: E731
    np.testing.assert_allclose(predict_tiled_aligned(blur, vol, tile=16, overlap=2), blur(vol),
                               atol=1e-6)
    np.testing.assert_allclose(predict_tiled_aligned(blur, vol, tile=(12, 16, 20), overlap=(2, 4, 2)),
                               blur(vol), atol=1e-6)
    with pytest.raises(ValueError, match="tile"):
        predict_tiled_aligned(blur, vol, tile=(16, 16), overlap=2)
    with pytest.raises(ValueError, match="image"):
        predict_tiled_aligned(blur, np.zeros((8, 8)), tile=4, overlap=2)
    with pytest.raises(TypeError, match="fn"):
        predict_tiled_aligned("blur", vol, tile=16, overlap=2)
    with pytest.raises(ValueError, match="fn must return"):
        predict_tiled_aligned(lambda x: x[:, :2], vol, tile=16, overlap=2)


def test_frozen_norm_uses_running_statistics_in_training():
    norm = TileSafeNorm(3)
    norm.running_mean.fill_(2.0)
    norm.running_var.fill_(4.0)
    norm.frozen = True
    norm.train()
    x = torch.randn(2, 3, 5, 5) * 7 + 1
    np.testing.assert_allclose(norm(x).detach().numpy(), ((x - 2.0) / np.sqrt(4.0 + 1e-5)).numpy(),
                               atol=1e-5)
    assert float(norm.running_mean[0]) == 2.0          # statistics not updated
