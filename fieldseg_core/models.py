"""Small 2D U-Nets that regress the field representations of the book.

Two backbones and a representation-aware wrapper:

- :class:`UNet` -- a configurable U-Net with (residual) convolution blocks,
  normalisation (:class:`TileSafeNorm` by default, or GroupNorm) + SiLU,
  optional spatial dropout and max-pool or strided down-sampling.
- :class:`AttentionUNet` -- a tutorial-scale variant of the MA-UNet of
  Ruiz Vargas et al. (§2.1.4): a transformer encoder over the bottleneck tokens and
  attention in the decoder.
- :func:`receptive_field_margin` -- how far (in pixels) an output pixel of a
  U-Net sees, the overlap that makes tiled prediction exact.
- :func:`build_model` -- picks the output channels for a representation
  (``"poisson"``, ``"diffusion"``, ``"edt"``, ``"flows"``, ``"sdf"``) and, for
  the signed distance function, attaches the learnable sigmoid of the SDF paper.

All tensors are batch-first, ``(B, C, H, W)``.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "REPRESENTATIONS",
    "out_channels_for",
    "NORMS",
    "TileSafeNorm",
    "UNet",
    "AttentionUNet",
    "LearnableSigmoid",
    "FieldModel",
    "build_model",
    "count_parameters",
    "receptive_field_margin",
    "downsampling_factor",
]

#: Normalisation layers of the U-Nets: ``"batch"`` (:class:`TileSafeNorm`, the
#: default) or ``"group"`` (GroupNorm, whose statistics depend on the input).
NORMS = ("batch", "group")

#: Field representations a model can be built for.
REPRESENTATIONS = ("poisson", "diffusion", "edt", "flows", "sdf")

_SCALAR_REPRESENTATIONS = ("poisson", "diffusion", "edt", "sdf")
_ARCHS = ("unet", "attention")


# --------------------------------------------------------------------------- #
# validation helpers (private; the shared ones in _validate work on numpy)
# --------------------------------------------------------------------------- #
def _validate_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value!r}")
    return int(value)


def _validate_probability(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)


def _validate_representation(representation):
    if representation not in REPRESENTATIONS:
        raise ValueError(
            f"representation must be one of {REPRESENTATIONS}, got {representation!r}"
        )
    return representation


def _validate_ndim(ndim, allowed=(2, 3)):
    if isinstance(ndim, bool) or not isinstance(ndim, numbers.Integral) or ndim not in allowed:
        raise ValueError(f"ndim must be one of {allowed}, got {ndim!r}")
    return int(ndim)


def _resolve_widths(widths, depth):
    """Turn ``widths`` (int or sequence) and ``depth`` into a tuple of level widths."""
    if depth is not None:
        if isinstance(depth, bool) or not isinstance(depth, numbers.Integral) or depth < 0:
            raise ValueError(f"depth must be a non-negative integer, got {depth!r}")
        depth = int(depth)
    if isinstance(widths, numbers.Integral) and not isinstance(widths, bool):
        base = _validate_positive_int(widths, "widths")
        if depth is None:
            raise ValueError("depth is required when widths is a single integer")
        return tuple(base * 2**i for i in range(depth + 1))
    try:
        widths = tuple(widths)
    except TypeError:
        raise TypeError(
            f"widths must be an int or a sequence of ints, got {type(widths).__name__}"
        ) from None
    if len(widths) == 0:
        raise ValueError("widths must not be empty")
    widths = tuple(_validate_positive_int(w, f"widths[{i}]") for i, w in enumerate(widths))
    if depth is not None and depth != len(widths) - 1:
        raise ValueError(
            f"depth={depth} does not match widths={widths} (expected len(widths) == depth + 1)"
        )
    return widths


# --------------------------------------------------------------------------- #
# building blocks
# --------------------------------------------------------------------------- #
class TileSafeNorm(nn.BatchNorm2d):
    """Batch normalisation whose statistics at inference never depend on the input.

    In training mode it normalises each channel with the statistics of the
    current batch and updates running estimates of them (exactly
    :class:`torch.nn.BatchNorm2d`); in eval mode -- or always, once
    :attr:`frozen` is set -- it applies the running statistics, i.e. a fixed
    per-channel affine map ``y = gamma (x - mu) / sqrt(var + eps) + beta``.

    Parameters
    ----------
    channels : int
        Feature channels.
    eps, momentum : float
        As for :class:`torch.nn.BatchNorm2d`.

    Attributes
    ----------
    frozen : bool
        If True the running statistics are used (and not updated) in training
        mode too; ``gamma`` and ``beta`` still train. Fine-tuning on a handful
        of crops sets it (:func:`fieldseg_core.transfer.freeze_norm_statistics`):
        the statistics of a batch of one or two crops are too noisy to learn
        from, and a frozen encoder must compute the same features as at test time.

    Notes
    -----
    *Why not GroupNorm.* GroupNorm (Wu & He, 2018) normalises every image by the
    mean and variance of its own feature maps, so a pixel's output depends on
    the whole input: a tile cut from an image is normalised differently from
    the image, and tiled prediction can never equal untiled prediction. With
    running statistics the eval-mode network is a composition of convolutions,
    pointwise maps and poolings; its output at a pixel depends only on the
    inputs within :func:`receptive_field_margin` of it, which is what makes
    tiling exact.

    *Why batch statistics in training.* A per-channel affine frozen after
    training would need a separate calibration pass; batch statistics give the
    usual fast, well-conditioned optimisation and collect the running
    statistics on the way.

    sync_statistics : bool
        If True and a process group of more than one rank is initialised,
        training-mode statistics are computed over the sub-batches of all
        ranks (one differentiable all-reduce per layer, on any backend: gloo
        on the CPU too), so a data-parallel step equals one step over the
        union of the ranks' batches.
        :func:`fieldseg_core.distributed.synchronise_batchnorm` sets it; every
        rank must then run the same training-mode forwards.

    *Data-parallel training.* Without :attr:`sync_statistics`, each rank of
    DistributedDataParallel would normalise with the statistics of its own
    sub-batch, so the step would differ from one process over the whole
    batch. With it (set by the package's data-parallel training), the
    statistics, gradients and running estimates are those of the union
    batch; :attr:`frozen` layers are per-sample and need nothing.

    References
    ----------
    .. [1] S. Ioffe, C. Szegedy, "Batch normalization: accelerating deep network
       training by reducing internal covariate shift", ICML 2015.
    .. [2] Y. Wu, K. He, "Group normalization", ECCV 2018.

    Examples
    --------
    >>> import torch
    >>> norm = TileSafeNorm(2).eval()
    >>> x = torch.randn(1, 2, 8, 8)
    >>> bool(torch.allclose(norm(x)[..., :4, :4], norm(x[..., :4, :4])))  # a crop: same values
    True
    """

    def __init__(self, channels, eps=1e-5, momentum=0.1):
        super().__init__(channels, eps=eps, momentum=momentum)
        self.frozen = False
        self.sync_statistics = False

    def forward(self, x):
        if self.frozen:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                False, 0.0, self.eps)
        if self.training and self.sync_statistics and _world_size() > 1:
            return self._synchronised_forward(x)
        return super().forward(x)

    def _synchronised_forward(self, x):
        # Batch statistics over every rank's sub-batch: one differentiable all-reduce
        # of (sum, sum of squares, count), so gradients flow to all ranks' inputs and
        # a data-parallel step equals the step over the union of the batches.
        from torch.distributed.nn.functional import all_reduce

        dims = [0] + list(range(2, x.ndim))
        channels = x.shape[1]
        count = x.new_full((1,), x.numel() // channels)
        totals = all_reduce(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        n = totals[-1]
        mean = totals[:channels] / n
        var = (totals[channels:2 * channels] / n - mean * mean).clamp_min(0.0)
        with torch.no_grad():
            self.num_batches_tracked += 1
            m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                 else self.momentum)
            self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
        shape = (1, channels) + (1,) * (x.ndim - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)

    def extra_repr(self):
        return (super().extra_repr() + (", frozen=True" if self.frozen else "")
                + (", sync_statistics=True" if self.sync_statistics else ""))


def _world_size():
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _norm(channels, groups, norm):
    if norm == "group":
        # gcd keeps any channel count legal without silently changing widths.
        return nn.GroupNorm(math.gcd(groups, channels), channels)
    return TileSafeNorm(channels)


def _validate_norm(norm):
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    return norm


class ConvBlock(nn.Module):
    """Two 3x3 convolutions with normalisation + SiLU, optionally residual.

    ``conv-norm-SiLU-conv-norm`` followed by SiLU; with ``residual=True`` the
    input (projected by a bias-free 1x1 convolution when the width changes) is
    added before the last SiLU. Convolutions feeding a norm carry no bias (the
    norm's shift makes it redundant). ``norm`` is ``"batch"``
    (:class:`TileSafeNorm`) or ``"group"`` (GroupNorm with ``groups`` groups).
    """

    def __init__(self, in_channels, out_channels, groups=8, residual=True, norm="batch"):
        super().__init__()
        norm = _validate_norm(norm)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm1 = _norm(out_channels, groups, norm)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(out_channels, groups, norm)
        self.act = nn.SiLU()
        self.residual = residual
        if residual and in_channels != out_channels:
            self.project = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        else:
            self.project = nn.Identity()

    def forward(self, x):
        y = self.act(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        if self.residual:
            y = y + self.project(x)
        return self.act(y)


class _PassSkip(nn.Module):
    """Skip connection used as is (the plain U-Net's 'gate')."""

    def forward(self, skip, gate):
        return skip


class AttentionGate(nn.Module):
    """Additive attention on a skip connection (Oktay et al., 2018).

    ``a = sigmoid(psi(SiLU(W_x skip + W_g gate)))`` is a one-channel map in
    (0, 1) that rescales the skip features; ``gate`` is the up-sampled decoder
    feature at the same resolution.
    """

    def __init__(self, skip_channels, gate_channels, inter_channels=None):
        super().__init__()
        inter = inter_channels or max(skip_channels // 2, 1)
        self.w_skip = nn.Conv2d(skip_channels, inter, 1, bias=False)
        self.w_gate = nn.Conv2d(gate_channels, inter, 1)
        self.psi = nn.Conv2d(inter, 1, 1)

    def forward(self, skip, gate):
        attention = torch.sigmoid(self.psi(F.silu(self.w_skip(skip) + self.w_gate(gate))))
        return skip * attention


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel re-weighting (Hu et al., 2018)."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x):
        weights = torch.sigmoid(self.fc2(F.silu(self.fc1(x.mean(dim=(2, 3), keepdim=True)))))
        return x * weights


def sinusoidal_position_2d(height, width, channels, device=None, dtype=None):
    """2D sine-cosine positional embedding of shape ``(1, channels, height, width)``.

    A quarter of the channels each hold ``sin``/``cos`` of the row index and
    ``sin``/``cos`` of the column index at geometrically spaced frequencies
    (the 1D scheme of Vaswani et al., 2017, applied per axis), so it exists for
    any bottleneck size. ``channels`` must be a multiple of 4.
    """
    if channels % 4:
        raise ValueError(f"channels must be a multiple of 4 for a 2D sinusoidal embedding, got {channels}")
    quarter = channels // 4
    freqs = torch.exp(
        -math.log(10000.0) * torch.arange(quarter, device=device, dtype=torch.float32) / quarter
    )
    rows = torch.arange(height, device=device, dtype=torch.float32)[:, None] * freqs  # (H, q)
    cols = torch.arange(width, device=device, dtype=torch.float32)[:, None] * freqs  # (W, q)
    row_emb = torch.cat([rows.sin(), rows.cos()], dim=1)[:, None, :].expand(height, width, 2 * quarter)
    col_emb = torch.cat([cols.sin(), cols.cos()], dim=1)[None, :, :].expand(height, width, 2 * quarter)
    emb = torch.cat([row_emb, col_emb], dim=2).permute(2, 0, 1)[None]
    return emb.to(dtype=dtype or torch.float32)


class BottleneckTransformer(nn.Module):
    """Transformer encoder over the flattened bottleneck feature map.

    Each bottleneck pixel is a token of dimension ``channels``; a fixed 2D
    sinusoidal embedding is added so the encoder sees positions at any input
    size. Pre-norm layers with a final LayerNorm; the output is reshaped back
    to ``(B, C, h, w)``.
    """

    def __init__(self, channels, heads=4, layers=2, mlp_ratio=2, dropout=0.0):
        super().__init__()
        if channels % heads:
            raise ValueError(
                f"the bottleneck width ({channels}) must be divisible by heads ({heads})"
            )
        if channels % 4:
            raise ValueError(
                f"the bottleneck width ({channels}) must be a multiple of 4 for the "
                "2D sinusoidal position embedding"
            )
        layer = nn.TransformerEncoderLayer(
            d_model=channels,
            nhead=heads,
            dim_feedforward=mlp_ratio * channels,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=layers, norm=nn.LayerNorm(channels), enable_nested_tensor=False
        )

    def forward(self, x):
        b, c, h, w = x.shape
        x = x + sinusoidal_position_2d(h, w, c, device=x.device, dtype=x.dtype)
        tokens = self.encoder(x.flatten(2).transpose(1, 2))  # (B, h*w, C)
        return tokens.transpose(1, 2).reshape(b, c, h, w)


# --------------------------------------------------------------------------- #
# backbones
# --------------------------------------------------------------------------- #
class UNet(nn.Module):
    """Configurable 2D U-Net.

    Parameters
    ----------
    in_channels : int
        Channels of the input image.
    out_channels : int
        Channels of the output (the 1x1 head).
    widths : int or sequence of int
        Feature widths per resolution level, from full resolution to the
        bottleneck; ``len(widths) - 1`` down-samplings. A single int is a base
        width doubled at each of ``depth`` levels.
    depth : int, optional
        Number of down-samplings. Required when ``widths`` is an int; must
        equal ``len(widths) - 1`` when ``widths`` is a sequence.
    residual : bool
        Residual convolution blocks (input added before the last activation).
    groups : int
        GroupNorm groups (``norm="group"`` only); a layer with ``c`` channels
        uses ``gcd(groups, c)``.
    dropout : float
        Probability of :class:`torch.nn.Dropout2d` (whole feature maps dropped)
        after every encoder block; 0 disables it.
    downsample : {"maxpool", "stride"}
        2x2 max pooling, or a learned 2x2 convolution with stride 2.
    upsample : {"transpose", "bilinear"}
        2x2 transposed convolution, or bilinear interpolation followed by a
        1x1 convolution, halving the width before the skip concatenation.
    norm : {"batch", "group"}
        Normalisation layer: :class:`TileSafeNorm` (batch statistics in
        training, running statistics at inference, so the eval-mode network
        is tile-consistent) or GroupNorm (per-image statistics; tiled
        prediction then differs from untiled prediction everywhere).

    Notes
    -----
    Layout: level 0 is a :class:`ConvBlock` from ``in_channels`` to
    ``widths[0]``; level ``i`` down-samples and applies a block from
    ``widths[i-1]`` to ``widths[i]``. The decoder up-samples level ``i`` to
    ``widths[i-1]`` channels, concatenates the level ``i-1`` skip and applies a
    block from ``2 widths[i-1]`` to ``widths[i-1]``. A 1x1 convolution maps
    ``widths[0]`` to ``out_channels``. The output is linear (no activation).

    Input sizes need not be multiples of ``2**depth``: the input is padded on
    the bottom/right by edge replication up to the next multiple and the
    output is cropped back, so the output always has the input's height and
    width. Replication (rather than zeros) avoids an artificial dark border.

    References
    ----------
    .. [1] O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional networks
       for biomedical image segmentation", MICCAI 2015.
    .. [2] Ruiz Vargas et al., §2.1.4 (residual blocks, GroupNorm, SiLU, spatial dropout);
       we default to batch normalisation with running statistics (see :class:`TileSafeNorm`).

    Examples
    --------
    >>> import torch
    >>> net = UNet(in_channels=1, out_channels=3, widths=(8, 16))
    >>> net(torch.zeros(2, 1, 33, 20)).shape
    torch.Size([2, 3, 33, 20])
    """

    def __init__(self, in_channels=1, out_channels=1, widths=(16, 32, 64), depth=None,
                 residual=True, groups=8, dropout=0.0, downsample="maxpool",
                 upsample="transpose", norm="batch"):
        super().__init__()
        self.in_channels = _validate_positive_int(in_channels, "in_channels")
        self.out_channels = _validate_positive_int(out_channels, "out_channels")
        self.widths = _resolve_widths(widths, depth)
        self.depth = len(self.widths) - 1
        groups = _validate_positive_int(groups, "groups")
        dropout = _validate_probability(dropout, "dropout")
        if downsample not in ("maxpool", "stride"):
            raise ValueError(f"downsample must be 'maxpool' or 'stride', got {downsample!r}")
        if upsample not in ("transpose", "bilinear"):
            raise ValueError(f"upsample must be 'transpose' or 'bilinear', got {upsample!r}")
        self.norm = _validate_norm(norm)
        self.downsample, self.upsample = downsample, upsample
        w = self.widths

        self.encoder = nn.ModuleList()
        self.downs = nn.ModuleList()
        for i, width in enumerate(w):
            if i > 0:
                self.downs.append(
                    nn.MaxPool2d(2) if downsample == "maxpool"
                    else nn.Conv2d(w[i - 1], w[i - 1], 2, stride=2)
                )
            block = ConvBlock(in_channels if i == 0 else w[i - 1], width, groups, residual, norm)
            self.encoder.append(
                nn.Sequential(block, nn.Dropout2d(dropout)) if dropout > 0 else block
            )
        self.bottleneck = self._make_bottleneck(w[-1])

        self.ups = nn.ModuleList()
        self.gates = nn.ModuleList()
        self.decoder = nn.ModuleList()
        self.fusions = nn.ModuleList()
        for i in range(self.depth, 0, -1):
            if upsample == "transpose":
                up = nn.ConvTranspose2d(w[i], w[i - 1], 2, stride=2)
            else:
                up = nn.Sequential(
                    nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                    nn.Conv2d(w[i], w[i - 1], 1),
                )
            self.ups.append(up)
            self.gates.append(self._make_skip_gate(w[i - 1]))
            self.decoder.append(ConvBlock(2 * w[i - 1], w[i - 1], groups, residual, norm))
            self.fusions.append(self._make_fusion(w[i - 1]))
        self.head = nn.Conv2d(w[0], out_channels, 1)

    # hooks overridden by AttentionUNet
    def _make_bottleneck(self, channels):
        return nn.Identity()

    def _make_skip_gate(self, channels):
        return _PassSkip()

    def _make_fusion(self, channels):
        return nn.Identity()

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"x must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )

    def forward(self, x):
        self._check_input(x)
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")

        skips = []
        for i, block in enumerate(self.encoder):
            if i > 0:
                x = self.downs[i - 1](x)
            x = block(x)
            skips.append(x)
        x = self.bottleneck(skips.pop())

        for up, gate, block, fusion in zip(self.ups, self.gates, self.decoder, self.fusions):
            x = up(x)
            skip = gate(skips.pop(), x)
            x = fusion(block(torch.cat([skip, x], dim=1)))
        return self.head(x)[..., :height, :width]


class AttentionUNet(UNet):
    """U-Net with a bottleneck transformer and attention in the decoder.

    A tutorial-scale version of the MA-UNet of Ruiz Vargas et al. (§2.1.4): residual
    GroupNorm/SiLU blocks with spatial dropout in the encoder, a transformer
    encoder over the bottleneck tokens, and "dual" attention in the decoder.

    Parameters
    ----------
    in_channels, out_channels, widths, depth, groups, dropout, downsample, upsample, norm
        As for :class:`UNet`. ``widths[-1]`` must be divisible by ``heads``
        and by 4.
    residual : bool
        Residual blocks (default True, as in MA-UNet).
    heads : int
        Attention heads of the bottleneck transformer.
    layers : int
        Transformer encoder layers.
    mlp_ratio : int
        Feed-forward width of the transformer as a multiple of ``widths[-1]``.
    transformer_dropout : float
        Dropout inside the transformer layers.

    Notes
    -----
    Bottleneck: the ``(B, C, h, w)`` feature map becomes ``h*w`` tokens of
    size ``C``; a fixed 2D sinusoidal position embedding is added (so any
    input size works) and ``layers`` pre-norm
    :class:`torch.nn.TransformerEncoderLayer` s (GELU, ``heads`` heads) are
    applied.

    Decoder: Ruiz Vargas et al. only says "dual attention modules"; we read that as
    (1) an additive attention gate that rescales each skip connection with a
    spatial map computed from the skip and the up-sampled decoder features
    (Oktay et al., 2018) and (2) squeeze-and-excitation channel attention
    on the fused features of each decoder stage. The paper's scale (eight
    heads, three layers, 1536 bottleneck channels, spatial dropout 0.3) is
    reachable through the arguments; the defaults are small for CPU use.

    Tiling: the transformer attends over every bottleneck token, its position
    embedding counts from the tile's corner, and the channel attention
    averages over the whole feature map, so every output pixel depends on the
    whole input (:func:`receptive_field_margin` returns None). Tiled prediction
    is an approximation for this model, whatever the overlap.

    References
    ----------
    .. [1] Ruiz Vargas et al., §2.1.4 (MA-UNet) and Y. Cai, Y. Wang, "MA-Unet", ECNCT 2021.
    .. [2] O. Oktay et al., "Attention U-Net: learning where to look for the
       pancreas", MIDL 2018.
    .. [3] J. Hu, L. Shen, G. Sun, "Squeeze-and-excitation networks", CVPR 2018.

    Examples
    --------
    >>> import torch
    >>> net = AttentionUNet(widths=(8, 16, 32), heads=2, layers=1)
    >>> net(torch.zeros(1, 1, 30, 30)).shape
    torch.Size([1, 1, 30, 30])
    """

    def __init__(self, in_channels=1, out_channels=1, widths=(16, 32, 64), depth=None,
                 residual=True, groups=8, dropout=0.0, downsample="maxpool",
                 upsample="transpose", heads=4, layers=2, mlp_ratio=2,
                 transformer_dropout=0.0, norm="batch"):
        self._heads = _validate_positive_int(heads, "heads")
        self._layers = _validate_positive_int(layers, "layers")
        self._mlp_ratio = _validate_positive_int(mlp_ratio, "mlp_ratio")
        self._transformer_dropout = _validate_probability(transformer_dropout, "transformer_dropout")
        super().__init__(in_channels, out_channels, widths, depth, residual, groups, dropout,
                         downsample, upsample, norm)

    def _make_bottleneck(self, channels):
        return BottleneckTransformer(channels, self._heads, self._layers, self._mlp_ratio,
                                     self._transformer_dropout)

    def _make_skip_gate(self, channels):
        return AttentionGate(channels, channels)

    def _make_fusion(self, channels):
        return ChannelAttention(channels)


# --------------------------------------------------------------------------- #
# representation heads
# --------------------------------------------------------------------------- #
class LearnableSigmoid(nn.Module):
    """Sigmoid with learnable slope and offset, ``sigma(alpha * z + beta)``.

    Parameters
    ----------
    alpha : float
        Initial slope (the SDF paper starts at 4).
    beta : float
        Initial offset (the SDF paper starts at 0).

    Notes
    -----
    .. math:: \\sigma_{\\alpha,\\beta}(z) = \\frac{1}{1 + e^{-(\\alpha z + \\beta)}}

    The SDF paper (eq. 5) maps a predicted signed distance function to an inside
    probability this way, with :math:`\\alpha, \\beta` trained with the
    network. :meth:`logits` returns :math:`\\alpha z + \\beta` (for
    numerically stable log-probabilities) and :meth:`tanh` the
    parameterised hyperbolic tangent :math:`2\\sigma_{\\alpha,\\beta}(z) - 1`
    of the SDF paper eq. 10 (see :mod:`fieldseg_core.losses` for why this form).

    References
    ----------
    .. [1] The SDF paper, §2, eqs. 5 and 10.

    Examples
    --------
    >>> import torch
    >>> s = LearnableSigmoid()
    >>> float(s(torch.tensor(0.0)).detach())
    0.5
    >>> round(float(s(torch.tensor(0.25)).detach()), 4)  # sigma(4 * 0.25) = sigma(1)
    0.7311
    """

    def __init__(self, alpha=4.0, beta=0.0):
        super().__init__()
        for name, value in (("alpha", alpha), ("beta", beta)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise TypeError(f"{name} must be a finite real number, got {value!r}")
        self.alpha = nn.Parameter(torch.tensor(float(alpha)))
        self.beta = nn.Parameter(torch.tensor(float(beta)))

    def logits(self, z):
        """Return ``alpha * z + beta``."""
        return self.alpha * z + self.beta

    def tanh(self, z):
        """Return ``2 * sigma(alpha * z + beta) - 1 = tanh((alpha * z + beta) / 2)``."""
        return torch.tanh(0.5 * self.logits(z))

    def forward(self, z):
        return torch.sigmoid(self.logits(z))

    def extra_repr(self):
        return f"alpha={self.alpha.item():.4g}, beta={self.beta.item():.4g}"


def out_channels_for(representation, ndim=2):
    """Number of output channels a network needs for a representation.

    Parameters
    ----------
    representation : str
        One of :data:`REPRESENTATIONS`.
    ndim : int
        Spatial dimensions of the target (2 or 3); only matters for flows.

    Returns
    -------
    channels : int
        1 for the scalar fields ("poisson", "diffusion", "edt", "sdf");
        ``ndim + 1`` for "flows" (one flow component per axis plus a
        cell-probability logit).

    Examples
    --------
    >>> out_channels_for("poisson"), out_channels_for("flows"), out_channels_for("flows", ndim=3)
    (1, 3, 4)
    """
    _validate_representation(representation)
    ndim = _validate_ndim(ndim)
    return ndim + 1 if representation == "flows" else 1


class FieldModel(nn.Module):
    """A backbone plus the representation it predicts.

    Parameters
    ----------
    backbone : torch.nn.Module
        Maps ``(B, C_in, H, W)`` to ``(B, out_channels_for(representation), H, W)``.
    representation : str
        One of :data:`REPRESENTATIONS`.
    ndim : int
        Spatial dimensions (2).

    Notes
    -----
    ``forward`` returns the raw backbone output. Channel layout:

    - "poisson", "diffusion", "edt": channel 0 is the field.
    - "flows": channels ``0 .. ndim-1`` are the flow components along the
      spatial axes in order (dy, dx) -- in the Cellpose convention the network
      predicts them scaled (see :func:`fieldseg_core.losses.flow_loss`) --
      and channel ``ndim`` is the cell-probability logit.
    - "sdf": channel 0 is the signed distance (positive inside cells);
      ``self.sigmoid`` is a :class:`LearnableSigmoid` turning it into an
      inside probability. Its parameters belong to the model, so an optimiser
      over ``model.parameters()`` trains alpha and beta too.

    :meth:`split` names the channels of an output.
    """

    def __init__(self, backbone, representation, ndim=2):
        super().__init__()
        self.representation = _validate_representation(representation)
        self.ndim = _validate_ndim(ndim, allowed=(2,))
        self.backbone = backbone
        self.sigmoid = LearnableSigmoid() if representation == "sdf" else None

    def forward(self, x):
        return self.backbone(x)

    def split(self, output):
        """Name the channels of ``output``.

        Returns a dict: ``{"field"}`` for scalar fields, ``{"flows", "logits"}``
        for flows (``logits`` keeps a channel axis of size 1), and
        ``{"sdf", "prob"}`` for the SDF (``prob`` from the learnable sigmoid).
        """
        expected = out_channels_for(self.representation, self.ndim)
        if not isinstance(output, torch.Tensor) or output.dim() != 4 or output.shape[1] != expected:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"output must have shape (B, {expected}, H, W), got {shape}")
        if self.representation == "flows":
            return {"flows": output[:, : self.ndim], "logits": output[:, self.ndim:]}
        if self.representation == "sdf":
            return {"sdf": output, "prob": self.sigmoid(output)}
        return {"field": output}


def build_model(representation, ndim=2, arch="unet", in_channels=1, **kwargs):
    """Build a backbone with the right output head for a representation.

    Parameters
    ----------
    representation : str
        One of :data:`REPRESENTATIONS`.
    ndim : int
        Spatial dimensions; the networks are 2D, so only 2 is accepted (3D
        data are handled slice-wise elsewhere).
    arch : {"unet", "attention"}
        :class:`UNet` or :class:`AttentionUNet`.
    in_channels : int
        Image channels.
    **kwargs
        Forwarded to the backbone (``widths``, ``dropout``, ``heads``, ...);
        ``out_channels`` is set from the representation and may not be given.

    Returns
    -------
    model : FieldModel
        Output channels: 1 for "poisson", "diffusion", "edt", "sdf";
        ``ndim + 1`` for "flows" (see :class:`FieldModel` for the layout).
        For "sdf", ``model.sigmoid`` is a :class:`LearnableSigmoid` with
        alpha = 4, beta = 0 (the SDF paper).

    Examples
    --------
    >>> import torch
    >>> model = build_model("flows", widths=(8, 16))
    >>> model(torch.zeros(1, 1, 16, 16)).shape
    torch.Size([1, 3, 16, 16])
    >>> build_model("sdf", widths=(8, 16)).sigmoid
    LearnableSigmoid(alpha=4, beta=0)
    """
    _validate_representation(representation)
    _validate_ndim(ndim, allowed=(2,))
    if arch not in _ARCHS:
        raise ValueError(f"arch must be one of {_ARCHS}, got {arch!r}")
    if "out_channels" in kwargs:
        raise ValueError("out_channels is determined by representation; do not pass it")
    cls = UNet if arch == "unet" else AttentionUNet
    backbone = cls(in_channels=in_channels, out_channels=out_channels_for(representation, ndim),
                   **kwargs)
    return FieldModel(backbone, representation, ndim)


def count_parameters(model, trainable_only=True):
    """Number of scalar parameters of a model.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    trainable_only : bool
        Count only parameters with ``requires_grad``.

    Returns
    -------
    n : int
        Sum of ``numel`` over the (trainable) parameters.

    Examples
    --------
    >>> from torch import nn
    >>> count_parameters(nn.Linear(3, 2))  # 3*2 weights + 2 biases
    8
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))


# --------------------------------------------------------------------------- #
# receptive field
# --------------------------------------------------------------------------- #
def _unet_of(model):
    backbone = getattr(model, "backbone", model)
    if not isinstance(backbone, UNet):
        raise TypeError("model must be a UNet, an AttentionUNet or a FieldModel around one, "
                        f"got {type(model).__name__}")
    return backbone


def downsampling_factor(model):
    """The factor ``2**depth`` between the input and the bottleneck grid of a U-Net.

    Parameters
    ----------
    model : UNet, AttentionUNet or FieldModel
        The network.

    Returns
    -------
    factor : int
        Tiles cut from an image must start at multiples of it for a tile's
        pooling windows to coincide with the whole image's.

    Examples
    --------
    >>> downsampling_factor(build_model("edt", widths=(4, 8, 16)))
    4
    """
    return 2 ** _unet_of(model).depth


def _unet_support(depth, upsample, p):
    """Input interval ``(lo, hi)`` that output pixel ``p`` of a plain U-Net depends on.

    Exact interval arithmetic through the layers (3x3 convolution: +-1 at its
    level; 2x2 pooling or stride-2 convolution: ``[2 lo, 2 hi + 1]``;
    2x2 stride-2 transposed convolution: ``[lo // 2, hi // 2]``; bilinear
    up-sampling: one more neighbour on each side).
    """
    def encoder(level, lo, hi):
        lo, hi = lo - 2, hi + 2                        # the block's two 3x3 convolutions
        for _ in range(level):
            lo, hi = 2 * lo, 2 * hi + 1                # down-sampling, then the block below
            lo, hi = lo - 2, hi + 2
        return lo, hi

    def decoder(level, lo, hi):
        if level == depth:                             # bottleneck = deepest encoder block
            return encoder(level, lo, hi)
        lo, hi = lo - 2, hi + 2                        # decoder block at this level
        skip = encoder(level, lo, hi)
        if upsample == "transpose":
            up_lo, up_hi = lo // 2, hi // 2
        else:
            up_lo, up_hi = (lo - 1) // 2, (hi + 1) // 2
        below = decoder(level + 1, up_lo, up_hi)
        return min(skip[0], below[0]), max(skip[1], below[1])

    return decoder(0, p, p) if depth > 0 else encoder(0, p, p)


def receptive_field_margin(model):
    """How far from an output pixel the inputs it depends on can lie, in pixels.

    Parameters
    ----------
    model : UNet, AttentionUNet or FieldModel
        The network (in eval mode, as for prediction).

    Returns
    -------
    margin : int or None
        The largest distance, along either axis, between an output pixel and
        an input pixel that can influence it, over the ``2**depth`` positions of
        the pixel relative to the pooling grid. None when the output depends
        on the whole input (:class:`AttentionUNet`, or ``norm="group"``).

    Notes
    -----
    In eval mode with :class:`TileSafeNorm` a :class:`UNet` is a stack of
    local operations, so output pixel :math:`p` depends on an interval
    :math:`[p - a(p), p + b(p)]` of input rows (and likewise columns),
    computed here exactly by propagating intervals through the layers. If a
    tile starts on the pooling grid (a multiple of :func:`downsampling_factor`)
    and contains that interval, the tile's output at :math:`p` equals the whole
    image's. :func:`fieldseg_core.predict.predict_tiled_aligned` cuts every
    overlap at its middle, so an overlap of ``2 * margin`` makes tiling exact.

    The interval is that of the layers' supports: with positive weights the
    network sees exactly this far (``tests/test_tiling.py`` checks it by
    perturbing single input rows). Trained or random weights may make the
    *effective* reach shorter, never longer.

    Examples
    --------
    >>> receptive_field_margin(build_model("flows", widths=(8, 16, 32)))
    23
    >>> receptive_field_margin(build_model("flows", arch="attention", widths=(8, 16, 32), heads=2)) is None
    True
    """
    net = _unet_of(model)
    if isinstance(net, AttentionUNet) or net.norm == "group":
        return None
    margin = 0
    for p in range(2 ** net.depth):
        lo, hi = _unet_support(net.depth, net.upsample, p)
        margin = max(margin, p - lo, hi - p)
    return int(margin)
