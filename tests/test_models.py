"""Tests for fieldseg_core.models (tiny networks so the file runs in seconds)."""

import math

import pytest
import torch
import torch.nn.functional as F

from fieldseg_core.models import (
    REPRESENTATIONS,
    AttentionUNet,
    FieldModel,
    LearnableSigmoid,
    UNet,
    build_model,
    count_parameters,
    out_channels_for,
)
from fieldseg_core.models import sinusoidal_position_2d

TINY = dict(widths=(4, 8, 16), groups=2)
TINY_ATT = dict(widths=(4, 8, 16), groups=2, heads=2, layers=1)


# --------------------------------------------------------------------------- #
# output shapes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("representation", REPRESENTATIONS)
@pytest.mark.parametrize("arch,kw", [("unet", TINY), ("attention", TINY_ATT)])
def test_output_shape_per_representation(representation, arch, kw):
    model = build_model(representation, arch=arch, **kw)
    out = model(torch.randn(2, 1, 16, 24))
    assert out.shape == (2, out_channels_for(representation), 16, 24)


@pytest.mark.parametrize("size", [(17, 9), (31, 33), (5, 6)])
@pytest.mark.parametrize("cls,kw", [(UNet, TINY), (AttentionUNet, TINY_ATT)])
def test_odd_sizes_keep_input_shape(size, cls, kw):
    net = cls(in_channels=2, out_channels=3, **kw)
    assert net(torch.randn(1, 2, *size)).shape == (1, 3, *size)


def test_odd_size_equals_crop_of_replicate_padded_input():
    # Documented behaviour: pad bottom/right by edge replication to a multiple
    # of 2**depth, run, crop back.
    net = UNet(**TINY).eval()
    x = torch.randn(1, 1, 13, 10)
    padded = F.pad(x, (0, 2, 0, 3), mode="replicate")  # to 16 x 12 (multiples of 4)
    with torch.no_grad():
        assert torch.allclose(net(x), net(padded)[..., :13, :10], atol=1e-6)


def test_out_channels_for():
    assert out_channels_for("poisson") == 1
    assert out_channels_for("diffusion") == 1
    assert out_channels_for("edt") == 1
    assert out_channels_for("sdf") == 1
    assert out_channels_for("flows", ndim=2) == 3
    assert out_channels_for("flows", ndim=3) == 4
    with pytest.raises(ValueError, match="representation"):
        out_channels_for("mask")
    with pytest.raises(ValueError, match="ndim"):
        out_channels_for("flows", ndim=4)


def test_split_names_channels():
    model = build_model("flows", **TINY)
    out = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    parts = model.split(out)
    assert torch.equal(parts["flows"], out[:, :2])
    assert torch.equal(parts["logits"], out[:, 2:3])
    sdf = build_model("sdf", **TINY)
    phi = torch.linspace(-1, 1, 16).reshape(1, 1, 4, 4)
    assert torch.allclose(sdf.split(phi)["prob"], torch.sigmoid(4 * phi))
    with pytest.raises(ValueError, match="output"):
        model.split(torch.zeros(1, 1, 4, 4))


def test_widths_from_depth():
    assert UNet(widths=4, depth=3).widths == (4, 8, 16, 32)
    assert UNet(widths=(8,)).depth == 0  # a single level without down-sampling
    with pytest.raises(ValueError, match="depth"):
        UNet(widths=(4, 8), depth=3)
    with pytest.raises(ValueError, match="depth is required"):
        UNet(widths=4)


@pytest.mark.parametrize("downsample", ["maxpool", "stride"])
@pytest.mark.parametrize("upsample", ["transpose", "bilinear"])
def test_sampling_options(downsample, upsample):
    net = UNet(downsample=downsample, upsample=upsample, **TINY)
    assert net(torch.randn(1, 1, 12, 20)).shape == (1, 1, 12, 20)


def test_spatial_dropout_active_only_in_training():
    net = UNet(dropout=0.5, **TINY)
    assert any(isinstance(m, torch.nn.Dropout2d) for m in net.modules())
    x = torch.randn(1, 1, 16, 16)
    torch.manual_seed(1)
    a = net.train()(x)
    b = net(x)
    assert not torch.allclose(a, b)
    net.eval()
    assert torch.equal(net(x), net(x))


# --------------------------------------------------------------------------- #
# parameter count
# --------------------------------------------------------------------------- #
def test_count_parameters_by_hand():
    net = UNet(in_channels=1, out_channels=1, widths=(2, 4), residual=False, groups=1)
    # Convolutions before a GroupNorm have no bias; GroupNorm(c) has 2c params.
    # enc block 1->2: conv 2*1*9=18, GN 4, conv 2*2*9=36, GN 4            -> 62
    # enc block 2->4: conv 4*2*9=72, GN 8, conv 4*4*9=144, GN 8           -> 232
    # up ConvTranspose 4->2, k=2: 4*2*4=32 + bias 2                       -> 34
    # dec block 4->2: conv 2*4*9=72, GN 4, conv 36, GN 4                  -> 116
    # head 1x1 2->1: 2 + bias 1                                           -> 3
    assert count_parameters(net) == 62 + 232 + 34 + 116 + 3
    res = UNet(in_channels=1, out_channels=1, widths=(2, 4), residual=True, groups=1)
    # residual projections (bias-free 1x1) where widths change: 1->2, 2->4, 4->2
    assert count_parameters(res) == 447 + 1 * 2 + 2 * 4 + 4 * 2


def test_count_parameters_trainable_only():
    net = UNet(in_channels=1, out_channels=1, widths=(2, 4), residual=False, groups=1)
    for p in net.head.parameters():
        p.requires_grad_(False)
    assert count_parameters(net) == 447 - 3
    assert count_parameters(net, trainable_only=False) == 447
    with pytest.raises(TypeError, match="model"):
        count_parameters("net")


def test_sdf_model_counts_sigmoid_parameters():
    backbone_only = count_parameters(UNet(**TINY))
    assert count_parameters(build_model("sdf", **TINY)) == backbone_only + 2
    assert count_parameters(build_model("edt", **TINY)) == backbone_only


# --------------------------------------------------------------------------- #
# attention variant
# --------------------------------------------------------------------------- #
def test_attention_unet_forward_backward_cpu():
    net = AttentionUNet(**TINY_ATT)
    x = torch.randn(2, 1, 20, 28)
    net(x).square().mean().backward()
    named = dict(net.named_parameters())
    transformer = [p for n, p in named.items() if n.startswith("bottleneck.")]
    gates = [p for n, p in named.items() if n.startswith("gates.")]
    channel = [p for n, p in named.items() if n.startswith("fusions.")]
    assert transformer and gates and channel
    for p in transformer + gates + channel:
        assert p.grad is not None and torch.isfinite(p.grad).all()
    assert any(p.grad.abs().sum() > 0 for p in transformer)


def test_attention_unet_has_more_modules_than_unet():
    assert count_parameters(AttentionUNet(**TINY_ATT)) > count_parameters(UNet(**TINY))


def test_attention_validation():
    with pytest.raises(ValueError, match="heads"):
        AttentionUNet(widths=(4, 8, 12), heads=5)
    with pytest.raises(ValueError, match="multiple of 4"):
        AttentionUNet(widths=(4, 6), heads=2)


def test_sinusoidal_position_embedding_values():
    emb = sinusoidal_position_2d(3, 5, 8)
    assert emb.shape == (1, 8, 3, 5)
    # channels: [sin(row f0), sin(row f1), cos(row f0), cos(row f1), same for cols]
    # frequencies f_j = 10000 ** (-j / 2) = 1, 0.01
    assert torch.allclose(emb[0, 0, 2, 4], torch.tensor(math.sin(2.0)))
    assert torch.allclose(emb[0, 3, 2, 4], torch.tensor(math.cos(0.02)))
    assert torch.allclose(emb[0, 4, 2, 4], torch.tensor(math.sin(4.0)))
    assert torch.allclose(emb[0, 6, 2, 4], torch.tensor(math.cos(4.0)))


# --------------------------------------------------------------------------- #
# learnable sigmoid
# --------------------------------------------------------------------------- #
def test_learnable_sigmoid_starts_as_sigma_4z():
    s = LearnableSigmoid()
    z = torch.linspace(-3, 3, 13)
    assert torch.allclose(s(z), torch.sigmoid(4 * z))
    assert s.alpha.item() == 4.0 and s.beta.item() == 0.0
    assert torch.allclose(s.tanh(z), 2 * torch.sigmoid(4 * z) - 1, atol=1e-6)


def test_learnable_sigmoid_gradients_reach_alpha_beta():
    s = LearnableSigmoid(alpha=2.0, beta=0.5)
    s(torch.tensor([0.3, -0.7])).sum().backward()
    # d/dalpha sigma(a z + b) = sigma' * z, d/dbeta = sigma'
    d = lambda z: math.exp(-(2 * z + 0.5)) / (1 + math.exp(-(2 * z + 0.5))) ** 2  # noqa: E731
    assert math.isclose(float(s.beta.grad), d(0.3) + d(-0.7), rel_tol=1e-5)
    assert math.isclose(float(s.alpha.grad), 0.3 * d(0.3) - 0.7 * d(-0.7), rel_tol=1e-5)


def test_sdf_model_sigmoid_trained_with_model():
    model = build_model("sdf", **TINY)
    assert isinstance(model, FieldModel) and isinstance(model.sigmoid, LearnableSigmoid)
    names = {n for n, _ in model.named_parameters()}
    assert {"sigmoid.alpha", "sigmoid.beta"} <= names
    assert build_model("poisson", **TINY).sigmoid is None


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #
def test_build_model_validation():
    with pytest.raises(ValueError, match="representation"):
        build_model("labels")
    with pytest.raises(ValueError, match="ndim"):
        build_model("flows", ndim=3)
    with pytest.raises(ValueError, match="arch"):
        build_model("edt", arch="resnet")
    with pytest.raises(ValueError, match="out_channels"):
        build_model("edt", out_channels=2)


def test_forward_validates_input():
    net = UNet(in_channels=2, **TINY)
    with pytest.raises(ValueError, match=r"\(B, 2, H, W\)"):
        net(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="x must have shape"):
        net(torch.zeros(2, 8, 8))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        net([[0.0]])


def test_constructor_validation():
    with pytest.raises(ValueError, match="dropout"):
        UNet(dropout=1.0)
    with pytest.raises(ValueError, match="downsample"):
        UNet(downsample="avg")
    with pytest.raises(ValueError, match="upsample"):
        UNet(upsample="nearest")
    with pytest.raises(TypeError, match="in_channels"):
        UNet(in_channels=1.5)
    with pytest.raises(ValueError, match=r"widths\[1\]"):
        UNet(widths=(4, 0))
    with pytest.raises(TypeError, match="alpha"):
        LearnableSigmoid(alpha=float("nan"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("arch,kw", [("unet", TINY), ("attention", TINY_ATT)])
def test_models_run_on_cuda(arch, kw):
    model = build_model("flows", arch=arch, **kw).eval()
    x = torch.randn(2, 1, 19, 24)
    with torch.no_grad():
        expected = model(x)
        got = model.cuda()(x.cuda()).cpu()
    assert torch.allclose(got, expected, atol=1e-3)
