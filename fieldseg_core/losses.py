"""Training losses for the field representations of the book.

- :func:`field_l1_loss` -- mean absolute error for scalar fields (Ruiz Vargas et al.).
- :func:`flow_loss` -- Cellpose-style flow MSE plus cell-probability BCE.
- :func:`soft_boundary`, :func:`modified_hausdorff_terms`,
  :func:`tanh_lsq_loss`, :func:`sdf_cross_entropy`, :func:`unified_sdf_loss`
  -- the signed-distance losses of the SDF paper.
- :func:`ivp_loss` -- the integration-aware loss of Peters.
- :func:`tversky_loss` -- soft Tversky loss for a foreground logit.
- :func:`reaction_diffusion_residual`, :func:`phase_field_energy` -- the
  physics priors of the physics-priors preprint as differentiable penalties.

All inputs are batch-first torch tensors ``(B, C, *spatial)`` with 2 or 3
spatial axes; every loss returns a 0-d tensor that can be back-propagated.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._validate import validate_number
from .models import LearnableSigmoid

__all__ = [
    "field_l1_loss",
    "flow_loss",
    "soft_boundary",
    "modified_hausdorff_terms",
    "tanh_lsq_loss",
    "sdf_cross_entropy",
    "unified_sdf_loss",
    "ivp_loss",
    "tversky_loss",
    "reaction_diffusion_residual",
    "phase_field_energy",
    "phase_field_regularise",
]

_REDUCTIONS = ("sum", "mean")

#: Factor between the flow channels a network learns and unit flows (Cellpose
#: trains on 5 x the unit flows); the default of :func:`flow_loss` and of the
#: post-processing in :mod:`fieldseg_core.predict`.
FLOW_SCALE = 5.0


# --------------------------------------------------------------------------- #
# private validation (the shared helpers in _validate work on numpy arrays)
# --------------------------------------------------------------------------- #
def _validate_tensor(x, name, ndims=(4, 5)):
    """Require a floating torch tensor with ``dim()`` in ``ndims``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() not in ndims:
        allowed = " or ".join(str(d) for d in ndims)
        raise ValueError(
            f"{name} must be a {allowed}-dimensional (B, C, *spatial) tensor, got shape {tuple(x.shape)}"
        )
    if x.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(x.shape)}")
    return x


def _validate_same_shape(a, b, name_a, name_b):
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def _validate_pixel_tensor(t, like, name, binary=False):
    """Check a per-pixel tensor of shape (B, *spatial) or (B, 1, *spatial).

    ``like`` is a (B, C, *spatial) tensor. Returns ``t`` as (B, 1, *spatial)
    on ``like``'s device (bool when ``binary``, else ``like``'s dtype).
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    spatial = tuple(like.shape[2:])
    batch = like.shape[0]
    if tuple(t.shape) == (batch, *spatial):
        t = t.unsqueeze(1)
    elif tuple(t.shape) != (batch, 1, *spatial):
        raise ValueError(
            f"{name} must have shape {(batch, *spatial)} or {(batch, 1, *spatial)}, got {tuple(t.shape)}"
        )
    if binary:
        if t.dtype != torch.bool:
            if t.is_complex():
                raise TypeError(f"{name} must be a boolean tensor, got dtype {t.dtype}")
            t = t != 0
        return t.to(like.device)
    if t.dtype == torch.bool:
        t = t.to(like.dtype)
    if not torch.is_floating_point(t):
        t = t.to(like.dtype)
    return t.to(like.device)


def _validate_in_unit_interval(t, name):
    if bool(((t < 0) | (t > 1)).any()):
        raise ValueError(f"{name} must lie in [0, 1]")


def _validate_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _validate_sigmoid(sigmoid):
    if sigmoid is not None and not isinstance(sigmoid, LearnableSigmoid):
        raise TypeError(
            f"sigmoid must be None or a LearnableSigmoid, got {type(sigmoid).__name__}"
        )
    return sigmoid


def _reduce(values, reduction):
    """Sum over all but the batch axis then average over the batch, or plain mean."""
    if reduction == "mean":
        return values.mean()
    return values.flatten(1).sum(dim=1).mean()


def _zero_like_graph(x):
    # A zero that stays connected to the graph, so backward() still works.
    return x.sum() * 0.0


# --------------------------------------------------------------------------- #
# scalar fields
# --------------------------------------------------------------------------- #
def field_l1_loss(pred, target, mask=None):
    """Mean absolute error between a predicted and a target field.

    Parameters
    ----------
    pred : torch.Tensor
        Predicted field, ``(B, C, *spatial)``.
    target : torch.Tensor
        Target field of the same shape.
    mask : torch.Tensor, optional
        Pixels to include, ``(B, *spatial)`` or ``(B, 1, *spatial)`` (bool or
        0/1); it applies to every channel. Default: all pixels.

    Returns
    -------
    loss : torch.Tensor
        0-d tensor. Zero (still attached to the graph) when the mask is empty.

    Notes
    -----
    Ruiz Vargas et al., eq. 3:

    .. math:: \\mathcal{L} = \\frac{1}{|\\Omega|} \\sum_{x \\in \\Omega} |\\hat u(x) - u(x)|

    with :math:`\\Omega` all pixels (and channels) of the batch, or only the
    masked ones.

    References
    ----------
    .. [1] Ruiz Vargas et al., §2.1.2, eq. 3.

    Examples
    --------
    >>> import torch
    >>> pred = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    >>> float(field_l1_loss(pred, torch.zeros_like(pred)))  # (0 + 1 + 2 + 3) / 4
    1.5
    """
    _validate_tensor(pred, "pred")
    _validate_tensor(target, "target")
    _validate_same_shape(pred, target, "pred", "target")
    residual = (pred - target).abs()
    if mask is None:
        return residual.mean()
    weights = _validate_pixel_tensor(mask, pred, "mask", binary=True).expand_as(residual)
    count = weights.sum()
    if count == 0:
        return _zero_like_graph(pred)
    return residual[weights].sum() / count


# --------------------------------------------------------------------------- #
# flows (Cellpose)
# --------------------------------------------------------------------------- #
def flow_loss(pred, target_flows, target_prob, flow_scale=FLOW_SCALE, return_parts=False):
    """Cellpose loss: flow MSE plus cell-probability BCE.

    Parameters
    ----------
    pred : torch.Tensor
        Network output ``(B, ndim + 1, *spatial)``: channels ``0 .. ndim-1``
        are the flow components along the spatial axes (dy, dx[, ...] in axis
        order), channel ``ndim`` the cell-probability logit.
    target_flows : torch.Tensor
        Unit-scale target flows, ``(B, ndim, *spatial)``.
    target_prob : torch.Tensor
        Target cell probability in [0, 1], ``(B, *spatial)`` or
        ``(B, 1, *spatial)`` (bool allowed).
    flow_scale : float
        Factor applied to the targets before the MSE.
    return_parts : bool
        Also return ``{"flow": ..., "prob": ...}``.

    Returns
    -------
    loss : torch.Tensor
        0-d tensor, ``flow + prob``; with ``return_parts`` a tuple
        ``(loss, parts)``.

    Notes
    -----
    .. math::

        \\mathcal{L} = \\frac{1}{N\\,d} \\sum_{x, k} (\\hat v_k(x) - s\\, v_k(x))^2
        + \\frac{1}{N} \\sum_x \\mathrm{BCE}(\\hat z(x), p(x))

    with :math:`s` = ``flow_scale``, :math:`d` = ``ndim``, :math:`N` the
    number of pixels in the batch and BCE the binary cross-entropy on the
    logit :math:`\\hat z`. Target flows are (near) unit vectors inside cells;
    scaling them by 5, as Cellpose does, gives the regression targets a
    magnitude comparable to the logit and its BCE. The network therefore
    learns ``flow_scale`` times the flows, and predictions must be divided by
    ``flow_scale`` before following them. The two terms are added with equal
    weight (the reference Cellpose code additionally halves the flow term).

    References
    ----------
    .. [1] C. Stringer et al., "Cellpose: a generalist algorithm for cellular
       segmentation", Nature Methods 18, 2021.
    .. [2] Le & Nguyen (flow-field re-implementation).

    Examples
    --------
    >>> import torch
    >>> pred = torch.zeros(1, 3, 2, 2)
    >>> flows = torch.zeros(1, 2, 2, 2)
    >>> prob = torch.zeros(1, 2, 2)
    >>> round(float(flow_loss(pred, flows, prob)), 4)  # BCE(0, 0) = log 2
    0.6931
    """
    _validate_tensor(pred, "pred")
    _validate_tensor(target_flows, "target_flows")
    ndim = pred.dim() - 2
    if pred.shape[1] != ndim + 1:
        raise ValueError(
            f"pred must have ndim + 1 = {ndim + 1} channels (flows + probability logit), "
            f"got {pred.shape[1]}"
        )
    expected = (pred.shape[0], ndim, *pred.shape[2:])
    if tuple(target_flows.shape) != expected:
        raise ValueError(f"target_flows must have shape {expected}, got {tuple(target_flows.shape)}")
    prob = _validate_pixel_tensor(target_prob, pred, "target_prob")
    _validate_in_unit_interval(prob, "target_prob")
    flow_scale = validate_number(flow_scale, "flow_scale", low=0.0, low_inclusive=False)

    flow_term = F.mse_loss(pred[:, :ndim], flow_scale * target_flows)
    prob_term = F.binary_cross_entropy_with_logits(pred[:, ndim:], prob)
    loss = flow_term + prob_term
    if return_parts:
        return loss, {"flow": flow_term, "prob": prob_term}
    return loss


# --------------------------------------------------------------------------- #
# signed distance functions (the SDF paper)
# --------------------------------------------------------------------------- #
def _sdf_logits(phi, sigmoid):
    return phi if sigmoid is None else sigmoid.logits(phi)


def _param_tanh(phi, sigmoid):
    # 2 sigma(l) - 1 == tanh(l / 2); LearnableSigmoid.tanh is the one formula.
    return torch.tanh(0.5 * phi) if sigmoid is None else sigmoid.tanh(phi)


def _validate_sdf_pair(phi_pred, phi_gt):
    _validate_tensor(phi_pred, "phi_pred")
    _validate_tensor(phi_gt, "phi_gt")
    _validate_same_shape(phi_pred, phi_gt, "phi_pred", "phi_gt")


def soft_boundary(phi, sigmoid=None):
    """Differentiable boundary map of a signed distance function.

    Parameters
    ----------
    phi : torch.Tensor
        Signed distance, positive inside, ``(B, C, *spatial)``.
    sigmoid : LearnableSigmoid, optional
        The learnable :math:`\\sigma_{\\alpha,\\beta}`; default the plain
        logistic function (:math:`\\alpha = 1, \\beta = 0`).

    Returns
    -------
    boundary : torch.Tensor
        Same shape as ``phi``, in (0, 1/4]; largest on the zero level set.

    Notes
    -----
    The SDF paper, eqs. 6-7:

    .. math:: B(x) = \\sigma_{\\alpha,\\beta}(\\phi(x))\\,\\sigma_{\\alpha,\\beta}(-\\phi(x))

    taken literally, i.e. the second factor is
    :math:`\\sigma(-\\alpha\\phi + \\beta)`, so the map is even in
    :math:`\\phi` and peaks at :math:`\\phi = 0` for any :math:`\\beta`
    (its height, :math:`\\sigma(\\beta)^2`, depends on :math:`\\beta`).

    References
    ----------
    .. [1] The SDF paper, §2, eqs. 6 and 7.

    Examples
    --------
    >>> import torch
    >>> soft_boundary(torch.tensor([[[[0.0, 100.0]]]]))
    tensor([[[[0.2500, 0.0000]]]])
    """
    _validate_tensor(phi, "phi")
    _validate_sigmoid(sigmoid)
    return torch.sigmoid(_sdf_logits(phi, sigmoid)) * torch.sigmoid(_sdf_logits(-phi, sigmoid))


def modified_hausdorff_terms(phi_pred, phi_gt, sigmoid=None, reduction="sum"):
    """The two soft Modified-Hausdorff terms of the SDF paper.

    Parameters
    ----------
    phi_pred : torch.Tensor
        Predicted signed distance (positive inside), ``(B, C, *spatial)``.
    phi_gt : torch.Tensor
        Ground-truth signed distance of the same shape.
    sigmoid : LearnableSigmoid, optional
        The learnable :math:`\\sigma_{\\alpha,\\beta}` shared by all terms;
        default the plain logistic function.
    reduction : {"sum", "mean"}
        "sum" (the paper's :math:`\\sum_{x\\in\\Omega}`): sum over the pixels
        of each image, then average over the batch. "mean": average over all
        pixels, i.e. the sum divided by the number of pixels per image.

    Returns
    -------
    left, right : torch.Tensor
        0-d tensors :math:`\\mathcal{L}_{LMHD}` and :math:`\\mathcal{L}_{RMHD}`.

    Notes
    -----
    The SDF paper writes the modified Hausdorff distance between the GT and the
    predicted contours as two boundary integrals (eq. 4): the distance to the
    predicted contour, :math:`|\\phi_{PRED}|`, integrated along the GT
    contour, plus :math:`|\\phi_{GT}|` integrated along the predicted
    contour. It then discretises them with soft boundary maps
    (:func:`soft_boundary`) as line-integral weights and a parameterised
    :math:`\\tanh` as a bounded distance (eqs. 8-9):

    .. math::

        \\mathcal{L}_{LMHD} = \\sum_{x\\in\\Omega} B_{GT}(x)\\,
            |\\tanh_{\\alpha,\\beta}(\\phi_{PRED}(x))|, \\qquad
        \\mathcal{L}_{RMHD} = \\sum_{x\\in\\Omega} B_{PRED}(x)\\,
            |\\tanh_{\\alpha,\\beta}(\\phi_{GT}(x))|

    which is exactly what is computed. Eq. 10 of the paper gives two
    inconsistent forms of the parameterised tanh, :math:`\\tanh(\\alpha(z-\\beta))`
    and :math:`2\\sigma_{\\alpha,\\beta}(z) - 1 = \\tanh((\\alpha z+\\beta)/2)`;
    we use the second, which ties it to the same learnable sigmoid. Nothing is
    detached: gradients reach :math:`\\phi_{PRED}` through both terms (through
    :math:`B_{PRED}` in the right one) and reach :math:`\\alpha, \\beta`.

    References
    ----------
    .. [1] The SDF paper, §2, eqs. 4 and 6-10.
    .. [2] M.-P. Dubuisson, A. K. Jain, "A modified Hausdorff distance for
       object matching", ICPR 1994.

    Examples
    --------
    >>> import torch
    >>> phi = torch.tensor([[[[-1.0, 0.0, 1.0]]]])
    >>> left, right = modified_hausdorff_terms(phi, phi)
    >>> round(float(left), 4)  # 2 * sigma(1) sigma(-1) * tanh(1/2) = 2 * 0.19661 * 0.46212
    0.1817
    """
    _validate_sdf_pair(phi_pred, phi_gt)
    _validate_sigmoid(sigmoid)
    _validate_reduction(reduction)
    left = soft_boundary(phi_gt, sigmoid) * _param_tanh(phi_pred, sigmoid).abs()
    right = soft_boundary(phi_pred, sigmoid) * _param_tanh(phi_gt, sigmoid).abs()
    return _reduce(left, reduction), _reduce(right, reduction)


def tanh_lsq_loss(phi_pred, phi_gt, sigmoid=None, reduction="sum"):
    """Least-squares error between the tanh-squashed SDFs (the SDF paper eq. 11).

    Parameters
    ----------
    phi_pred, phi_gt : torch.Tensor
        Predicted and ground-truth signed distances, ``(B, C, *spatial)``.
    sigmoid : LearnableSigmoid, optional
        Learnable :math:`\\sigma_{\\alpha,\\beta}`; default plain logistic.
    reduction : {"sum", "mean"}
        As in :func:`modified_hausdorff_terms`.

    Returns
    -------
    loss : torch.Tensor
        0-d tensor.

    Notes
    -----
    .. math:: \\mathcal{L}_{LSE} = \\sum_{x\\in\\Omega}
        \\big[\\tanh_{\\alpha,\\beta}(\\phi_{PRED}(x)) - \\tanh_{\\alpha,\\beta}(\\phi_{GT}(x))\\big]^2

    with :math:`\\tanh_{\\alpha,\\beta}(z) = 2\\sigma_{\\alpha,\\beta}(z) - 1`
    (see :func:`modified_hausdorff_terms`). The squashing makes the loss
    insensitive to the arbitrary far-field scale of the distances.

    References
    ----------
    .. [1] The SDF paper, §2, eqs. 10-11.

    Examples
    --------
    >>> import torch
    >>> round(float(tanh_lsq_loss(torch.zeros(1, 1, 1, 1), torch.full((1, 1, 1, 1), 2.0))), 4)
    0.58
    """
    _validate_sdf_pair(phi_pred, phi_gt)
    _validate_sigmoid(sigmoid)
    _validate_reduction(reduction)
    diff = _param_tanh(phi_pred, sigmoid) - _param_tanh(phi_gt, sigmoid)
    return _reduce(diff.square(), reduction)


def sdf_cross_entropy(phi_pred, target, sigmoid=None, reduction="sum"):
    """Binary cross-entropy of the sigmoid-mapped SDF (the SDF paper eq. 12).

    Parameters
    ----------
    phi_pred : torch.Tensor
        Predicted signed distance, ``(B, C, *spatial)``.
    target : torch.Tensor
        Binary GT segmentation :math:`S_{GT}` of the same shape (bool or 0/1,
        soft values in [0, 1] allowed).
    sigmoid : LearnableSigmoid, optional
        Learnable :math:`\\sigma_{\\alpha,\\beta}`; default plain logistic.
    reduction : {"sum", "mean"}
        As in :func:`modified_hausdorff_terms`.

    Returns
    -------
    loss : torch.Tensor
        0-d tensor.

    Notes
    -----
    .. math:: \\mathcal{L}_{CE} = -\\sum_{x\\in\\Omega} \\big[S_{GT}\\log\\sigma_{\\alpha,\\beta}(\\phi_{PRED})
        + (1 - S_{GT})\\log(1 - \\sigma_{\\alpha,\\beta}(\\phi_{PRED}))\\big]

    computed from the logit :math:`\\alpha\\phi + \\beta` with a log-sum-exp
    formulation, so saturated pixels do not produce infinities.

    References
    ----------
    .. [1] The SDF paper, §2, eq. 12.

    Examples
    --------
    >>> import torch
    >>> round(float(sdf_cross_entropy(torch.zeros(1, 1, 1, 2), torch.ones(1, 1, 1, 2))), 4)  # 2 log 2
    1.3863
    """
    _validate_tensor(phi_pred, "phi_pred")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    _validate_same_shape(phi_pred, target, "phi_pred", "target")
    _validate_sigmoid(sigmoid)
    _validate_reduction(reduction)
    target = target.to(device=phi_pred.device, dtype=phi_pred.dtype)
    _validate_in_unit_interval(target, "target")
    ce = F.binary_cross_entropy_with_logits(_sdf_logits(phi_pred, sigmoid), target, reduction="none")
    return _reduce(ce, reduction)


def unified_sdf_loss(phi_pred, phi_gt, sigmoid=None, target=None,
                     weights=(0.9, 0.1, 1.0, 1.0), reduction="sum"):
    """The SDF paper's unified objective: two MHD terms, tanh LSE and CE.

    Parameters
    ----------
    phi_pred, phi_gt : torch.Tensor
        Predicted and ground-truth signed distances (positive inside),
        ``(B, C, *spatial)``.
    sigmoid : LearnableSigmoid, optional
        The learnable :math:`\\sigma_{\\alpha,\\beta}` (the SDF paper starts it at
        alpha = 4, beta = 0); default the plain logistic function.
    target : torch.Tensor, optional
        Binary GT segmentation for the CE term; default ``phi_gt > 0``.
    weights : sequence of 4 floats
        :math:`(\\lambda_{LMHD}, \\lambda_{RMHD}, \\lambda_{LSE}, \\lambda_{CE})`,
        the order of eq. 13; the default is the paper's (0.9, 0.1, 1, 1).
    reduction : {"sum", "mean"}
        Applied to all four terms alike (see :func:`modified_hausdorff_terms`).

    Returns
    -------
    total : torch.Tensor
        0-d tensor.
    parts : dict of torch.Tensor
        Unweighted terms ``"lmhd"``, ``"rmhd"``, ``"lse"``, ``"ce"``.

    Notes
    -----
    .. math:: \\mathcal{L} = \\lambda_{LMHD}\\mathcal{L}_{LMHD} + \\lambda_{RMHD}\\mathcal{L}_{RMHD}
        + \\lambda_{LSE}\\mathcal{L}_{LSE} + \\lambda_{CE}\\mathcal{L}_{CE}

    with 0.9 on the left MHD term (GT boundary weighting the predicted
    distance), 0.1 on the right one (predicted boundary weighting the GT
    distance), 1 on the LSE and 1 on the CE term (the SDF paper, implementation
    details). The paper writes the MHD terms as sums over the image and does
    not say how the LSE and CE terms are reduced; we reduce all four the same
    way so the weights keep their relative meaning ("sum" and "mean" differ
    by the constant factor of pixels per image).

    References
    ----------
    .. [1] The SDF paper, §2, eq. 13 and "Implementation Details".

    Examples
    --------
    >>> import torch
    >>> phi = torch.tensor([[[[-2.0, -1.0, 1.0, 2.0]]]])
    >>> total, parts = unified_sdf_loss(phi, phi)
    >>> sorted(parts)
    ['ce', 'lmhd', 'lse', 'rmhd']
    >>> float(parts["lse"])
    0.0
    """
    _validate_sdf_pair(phi_pred, phi_gt)
    _validate_sigmoid(sigmoid)
    _validate_reduction(reduction)
    try:
        weights = tuple(weights)
    except TypeError:
        raise TypeError("weights must be a sequence of 4 real numbers") from None
    if len(weights) != 4:
        raise ValueError(f"weights must have 4 entries (lmhd, rmhd, lse, ce), got {len(weights)}")
    weights = tuple(validate_number(w, f"weights[{i}]", low=0.0) for i, w in enumerate(weights))
    if target is None:
        target = (phi_gt > 0).to(phi_pred.dtype)

    left, right = modified_hausdorff_terms(phi_pred, phi_gt, sigmoid, reduction)
    parts = {
        "lmhd": left,
        "rmhd": right,
        "lse": tanh_lsq_loss(phi_pred, phi_gt, sigmoid, reduction),
        "ce": sdf_cross_entropy(phi_pred, target, sigmoid, reduction),
    }
    total = sum(w * parts[k] for w, k in zip(weights, ("lmhd", "rmhd", "lse", "ce")))
    return total, parts


# --------------------------------------------------------------------------- #
# integration-aware loss (Peters)
# --------------------------------------------------------------------------- #
def _foreground_positions(mask, max_points, seed):
    """Index coordinates of foreground pixels, padded to a common count.

    Returns positions (B, P, ndim) float and a validity mask (B, P) bool.
    Foreground pixels are sorted to the front of each row (in raster order,
    or in a seeded random order when subsampling) and the first P kept.
    """
    batch = mask.shape[0]
    spatial = tuple(mask.shape[1:])
    flat = mask.reshape(batch, -1)
    counts = flat.sum(dim=1)
    if max_points is None:
        keys = (~flat).to(torch.int8)
        n_points = int(counts.max())
    else:
        generator = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.rand(flat.shape, generator=generator).to(flat.device)
        keys = noise + 2.0 * (~flat)
        n_points = min(int(counts.max()), max_points)
    order = torch.argsort(keys, dim=1, stable=True)[:, :n_points]
    valid = torch.arange(n_points, device=mask.device)[None, :] < counts[:, None]
    coords = torch.stack(torch.unravel_index(order, spatial), dim=-1)
    return coords, valid


def ivp_loss(pred_flows, true_flows, mask, n_iter=25, step=0.1, max_points=None, seed=0):
    """Integration-aware (IVP) loss of Peters.

    Foreground pixels are integrated with Euler steps through the predicted
    and through the true flow field; the loss is the mean squared distance
    between the two trajectories.

    Parameters
    ----------
    pred_flows : torch.Tensor
        Predicted flows ``(B, ndim, *spatial)``, component ``k`` along spatial
        axis ``k``, in pixels per unit time (divide a Cellpose-scaled output
        by its ``flow_scale`` first).
    true_flows : torch.Tensor
        Target flows of the same shape and device (cast to ``pred_flows``'
        dtype).
    mask : torch.Tensor
        Foreground (initial values), ``(B, *spatial)`` or ``(B, 1, *spatial)``.
    n_iter : int
        Euler steps :math:`n` (Peters uses 25).
    step : float
        Step size :math:`h` (Peters uses 0.1).
    max_points : int, optional
        Use at most this many foreground pixels per image, drawn without
        replacement with a generator seeded by ``seed``. Default: all.
    seed : int
        Seed for that subsampling (the same pixels every call).

    Returns
    -------
    loss : torch.Tensor
        0-d tensor; zero (attached to the graph) when ``mask`` is empty.

    Notes
    -----
    With :math:`P_0 = \\hat P_0` a foreground pixel, :math:`P_{i+1} = P_i +
    h F(P_i)` through the true field and :math:`\\hat P_{i+1} = \\hat P_i + h
    \\hat F(\\hat P_i)` through the predicted one (bilinear interpolation,
    positions clamped to the image, via
    :func:`fieldseg_core.dynamics.euler_integrate`), Peters (§5) minimises

    .. math:: \\mathcal{L}_{IVP} = \\frac{1}{n}\\sum_{i=0}^{n} \\|\\hat P_i - P_i\\|^2

    averaged over the initial values. We take :math:`\\|\\cdot\\|^2` as the
    squared Euclidean distance (summed over the coordinates) and average over
    all foreground pixels of the batch. Peters integrates every pixel
    ("semantic or not"); we follow the brief and use the foreground, which is
    where the flows are defined. Images with different foreground counts are
    padded to the largest count and the padding is masked out, so the result
    equals the plain average over the pixels. The true trajectories are
    computed without gradient; gradients reach ``pred_flows`` through every
    Euler step.

    References
    ----------
    .. [1] Peters, §5 (integration-aware loss) and §6.4 (25 steps of 0.1).

    Examples
    --------
    >>> import torch
    >>> flows = torch.zeros(1, 2, 4, 4)
    >>> mask = torch.ones(1, 4, 4, dtype=torch.bool)
    >>> float(ivp_loss(flows, flows, mask))
    0.0
    """
    from .dynamics import euler_integrate  # torch-heavy sibling, imported on use

    _validate_tensor(pred_flows, "pred_flows")
    _validate_tensor(true_flows, "true_flows")
    _validate_same_shape(pred_flows, true_flows, "pred_flows", "true_flows")
    ndim = pred_flows.dim() - 2
    if pred_flows.shape[1] != ndim:
        raise ValueError(
            f"pred_flows must have one channel per spatial axis ({ndim}), got {pred_flows.shape[1]}"
        )
    if true_flows.device != pred_flows.device:
        raise ValueError(f"pred_flows and true_flows must be on one device, got "
                         f"{pred_flows.device} and {true_flows.device}")
    # The target is data: integrate it in the prediction's precision.
    true_flows = true_flows.to(pred_flows.dtype)
    mask = _validate_pixel_tensor(mask, pred_flows, "mask", binary=True)[:, 0]
    n_iter = validate_number(n_iter, "n_iter", low=1, integer=True)
    step = validate_number(step, "step", low=0.0, low_inclusive=False)
    if max_points is not None:
        max_points = validate_number(max_points, "max_points", low=1, integer=True)
    seed = validate_number(seed, "seed", low=0, integer=True)

    if not bool(mask.any()):
        return _zero_like_graph(pred_flows)
    coords, valid = _foreground_positions(mask, max_points, seed)
    start = coords.to(pred_flows.dtype)
    _, pred_path = euler_integrate(pred_flows, start, n_iter, step=step, return_trajectories=True)
    with torch.no_grad():
        _, true_path = euler_integrate(true_flows.detach(), start, n_iter, step=step,
                                       return_trajectories=True)
    sq_dist = (pred_path - true_path).square().sum(dim=-1)  # (n_iter + 1, B, P)
    per_point = sq_dist.sum(dim=0) / n_iter
    weights = valid.to(per_point.dtype)
    return (per_point * weights).sum() / weights.sum()


# --------------------------------------------------------------------------- #
# semantic head
# --------------------------------------------------------------------------- #
def tversky_loss(logits, target, alpha=0.5, beta=0.5, smooth=1.0):
    """Soft Tversky loss on a foreground logit.

    Parameters
    ----------
    logits : torch.Tensor
        Foreground logits ``(B, C, *spatial)``.
    target : torch.Tensor
        Binary (or soft, in [0, 1]) target of the same shape.
    alpha : float
        Weight of false positives.
    beta : float
        Weight of false negatives.
    smooth : float
        Added to numerator and denominator (keeps empty images finite).

    Returns
    -------
    loss : torch.Tensor
        0-d tensor in [0, 1]: one minus the Tversky index, averaged over the
        batch.

    Notes
    -----
    With :math:`p = \\sigma(z)` and sums over the pixels (and channels) of
    one image,

    .. math:: TP = \\sum p\\,t,\\quad FP = \\sum p(1-t),\\quad FN = \\sum (1-p)t,

    .. math:: \\mathcal{L} = 1 - \\frac{TP + s}{TP + \\alpha FP + \\beta FN + s}.

    :math:`\\alpha = \\beta = 1/2` is the soft Dice loss; Peters uses the
    Tversky loss for its semantic head.

    References
    ----------
    .. [1] S. S. M. Salehi, D. Erdogmus, A. Gholipour, "Tversky loss function
       for image segmentation using 3D fully convolutional deep networks",
       MLMI 2017.
    .. [2] Peters, §6.3.

    Examples
    --------
    >>> import torch
    >>> logits = torch.full((1, 1, 2, 2), 50.0)  # p = 1 everywhere
    >>> target = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    >>> round(float(tversky_loss(logits, target, smooth=0.0)), 4)  # 1 - 2 / (2 + 1)
    0.3333
    """
    _validate_tensor(logits, "logits")
    if not isinstance(target, torch.Tensor):
        raise TypeError(f"target must be a torch.Tensor, got {type(target).__name__}")
    _validate_same_shape(logits, target, "logits", "target")
    alpha = validate_number(alpha, "alpha", low=0.0)
    beta = validate_number(beta, "beta", low=0.0)
    smooth = validate_number(smooth, "smooth", low=0.0)
    target = target.to(device=logits.device, dtype=logits.dtype)
    _validate_in_unit_interval(target, "target")
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    tp = (prob * target).sum(dim=1)
    fp = (prob * (1 - target)).sum(dim=1)
    fn = ((1 - prob) * target).sum(dim=1)
    index = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth).clamp_min(1e-12)
    return (1 - index).mean()


# --------------------------------------------------------------------------- #
# physics priors (the physics-priors preprint)
# --------------------------------------------------------------------------- #
def _laplacian_kernel(spatial_ndim, channels, device, dtype):
    """(2d+1)-point discrete Laplacian as a depthwise convolution kernel."""
    kernel = torch.zeros((3,) * spatial_ndim, device=device, dtype=dtype)
    centre = (1,) * spatial_ndim
    kernel[centre] = -2.0 * spatial_ndim
    for axis in range(spatial_ndim):
        for offset in (0, 2):
            index = list(centre)
            index[axis] = offset
            kernel[tuple(index)] = 1.0
    return kernel.expand(channels, 1, *kernel.shape).contiguous()


def _discrete_laplacian(u):
    """Laplacian of each channel on the interior pixels (no padding)."""
    spatial_ndim = u.dim() - 2
    kernel = _laplacian_kernel(spatial_ndim, u.shape[1], u.device, u.dtype)
    conv = F.conv2d if spatial_ndim == 2 else F.conv3d
    return conv(u, kernel, groups=u.shape[1])


_REACTIONS = ("bistable", "logistic", None)


def reaction_diffusion_residual(u, D=1.0, reaction="bistable", threshold=0.5):
    """Mean squared residual of a steady reaction-diffusion equation.

    Parameters
    ----------
    u : torch.Tensor
        Predicted field or probability ``(B, C, *spatial)`` (2 or 3 spatial
        axes, each at least 3 long).
    D : float
        Diffusion coefficient (pixels^2 per unit time).
    reaction : {"bistable", "logistic", None} or callable
        The reaction term :math:`f(u)`: ``"bistable"`` is
        :math:`u(1-u)(u-a)` (Nagumo / Allen-Cahn type, stable states 0 and 1),
        ``"logistic"`` is :math:`u(1-u)` (Fisher-KPP), ``None`` is
        :math:`f = 0` (Laplace equation); a callable maps the tensor ``u`` to
        :math:`f(u)` of the same shape.
    threshold : float
        :math:`a` of the bistable reaction, in (0, 1).

    Returns
    -------
    residual : torch.Tensor
        0-d tensor, the mean over the batch, channels and interior pixels of
        :math:`r^2`.

    Notes
    -----
    The physics-priors preprint penalises the residual of a reaction-diffusion equation on the
    network output but does not print the equation; we use the steady state

    .. math:: r(x) = D\\,\\Delta_h u(x) + f(u(x)), \\qquad
        \\mathcal{R} = \\operatorname{mean}_x r(x)^2,

    with :math:`\\Delta_h` the 5-point (7-point in 3D) stencil with unit
    spacing, applied as a fixed convolution. The residual is evaluated only
    on interior pixels, where the whole stencil lies inside the image, so no
    boundary condition is imposed. For the bistable reaction with
    :math:`a = 1/2` the standing front :math:`u = \\sigma(x/\\sqrt{2D})`
    solves the continuous equation, so the penalty favours smooth 0-to-1
    transitions about :math:`\\sqrt{2D}` pixels wide and flat plateaus.

    References
    ----------
    .. [1] The physics-priors preprint (PDE-constrained segmentation with physics priors).
    .. [2] J. Nagumo, S. Arimoto, S. Yoshizawa, "An active pulse transmission
       line simulating nerve axon", Proc. IRE 50, 1962.

    Examples
    --------
    >>> import torch
    >>> u = torch.zeros(1, 1, 3, 3)
    >>> u[0, 0, 1, 1] = 1.0  # Laplacian -4 at the centre, f(1) = 0
    >>> float(reaction_diffusion_residual(u))
    16.0
    """
    _validate_tensor(u, "u")
    if min(u.shape[2:]) < 3:
        raise ValueError(f"u must be at least 3 pixels along every spatial axis, got {tuple(u.shape)}")
    D = validate_number(D, "D", low=0.0, low_inclusive=False)
    if callable(reaction):
        reaction_fn = reaction
    elif reaction == "bistable":
        a = validate_number(threshold, "threshold")
        if not 0.0 < a < 1.0:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
        reaction_fn = lambda v: v * (1 - v) * (v - a)  # noqa: E731
    elif reaction == "logistic":
        reaction_fn = lambda v: v * (1 - v)  # noqa: E731
    elif reaction is None:
        reaction_fn = None
    else:
        raise ValueError(f"reaction must be one of {_REACTIONS} or a callable, got {reaction!r}")

    residual = D * _discrete_laplacian(u)
    if reaction_fn is not None:
        interior = (slice(None), slice(None)) + (slice(1, -1),) * (u.dim() - 2)
        f_u = reaction_fn(u)
        if not isinstance(f_u, torch.Tensor) or f_u.shape != u.shape:
            raise ValueError("reaction must return a tensor of the same shape as u")
        residual = residual + f_u[interior]
    return residual.square().mean()


def phase_field_energy(u, epsilon=1.0, reduction="sum"):
    """Modica-Mortola (Allen-Cahn) interface energy of a phase field.

    Parameters
    ----------
    u : torch.Tensor
        Phase field, ideally in [0, 1], ``(B, C, *spatial)``.
    epsilon : float
        Interface width parameter :math:`\\varepsilon` in pixels.
    reduction : {"sum", "mean"}
        "sum": the discrete integral over each image (unit pixel area, summed
        over channels), averaged over the batch. "mean": that integral divided
        by the number of pixels times channels (an energy density).

    Returns
    -------
    energy : torch.Tensor
        0-d tensor, >= 0.

    Notes
    -----
    .. math:: E_\\varepsilon(u) = \\int \\frac{\\varepsilon}{2}|\\nabla u|^2
        + \\frac{1}{\\varepsilon} W(u)\\,dx, \\qquad W(u) = u^2(1-u)^2

    discretised with forward differences between neighbouring pixels inside
    the image (no padding) and :math:`W` summed over all pixels. Both pure
    phases (:math:`u \\equiv 0` or :math:`1`) have zero energy. In 1D the
    profile :math:`u = \\sigma(kx)` has energy
    :math:`\\frac{1}{6}(\\frac{\\varepsilon k}{2} + \\frac{1}{\\varepsilon k})`,
    minimal (:math:`\\sqrt{2}/6` per unit interface length) for
    :math:`k = \\sqrt{2}/\\varepsilon`; sharper or smoother interfaces cost
    more. So the penalty acts as a smoothed perimeter: it favours short
    boundaries of width about :math:`\\varepsilon`.

    References
    ----------
    .. [1] L. Modica, S. Mortola, "Un esempio di Gamma-convergenza",
       Boll. Un. Mat. Ital. 14-B, 1977.
    .. [2] The physics-priors preprint (phase-field interface energy as a penalty).

    Examples
    --------
    >>> import torch
    >>> u = torch.tensor([[[[0.0, 1.0]]]])  # one jump of 1, W = 0 at both pixels
    >>> float(phase_field_energy(u, epsilon=2.0))  # 2 / 2 * 1
    1.0
    """
    _validate_tensor(u, "u")
    epsilon = validate_number(epsilon, "epsilon", low=0.0, low_inclusive=False)
    _validate_reduction(reduction)
    batch = u.shape[0]
    gradient = u.new_zeros(batch)
    for axis in range(2, u.dim()):
        gradient = gradient + torch.diff(u, dim=axis).square().flatten(1).sum(dim=1)
    potential = (u.square() * (1 - u).square()).flatten(1).sum(dim=1)
    energy = 0.5 * epsilon * gradient + potential / epsilon
    if reduction == "mean":
        energy = energy / u[0].numel()
    return energy.mean()


def phase_field_regularise(noisy, lam, epsilon=1.0, steps=200, lr=0.1):
    r"""Smooth a probability map with the phase-field prior: fit + ``lam`` x interface energy.

    Minimises, over maps :math:`u = \sigma(z)` in (0, 1),

    .. math:: \frac{1}{|\Omega|}\sum_x (u - p)^2 + \lambda\, E_\varepsilon(u),

    with :math:`p` the noisy map and :math:`E_\varepsilon` the per-pixel mean
    Modica-Mortola energy of :func:`phase_field_energy`, by ``steps`` Adam
    steps on the logits :math:`z`, started at :math:`z = \mathrm{logit}(p)`
    (``p`` clamped to [1e-3, 1 - 1e-3]). It shows what the prior prefers on
    its own: with ``lam = 0`` the start is the minimiser and the result stays
    within Adam's jitter (a few 1e-3) of the clamped input; larger ``lam`` removes
    speckle and shortens interfaces, and too large a value shrinks or fuses
    cells (chapter 9 of the book).

    Parameters
    ----------
    noisy : (M, N) array_like
        Probability map with values in [0, 1].
    lam : float
        Weight of the interface energy (>= 0).
    epsilon : float
        Interface width :math:`\varepsilon` of the energy.
    steps : int
        Number of Adam steps.
    lr : float
        Adam learning rate.

    Returns
    -------
    ndarray of float64, shape (M, N)
        The regularised map, in (0, 1).

    Examples
    --------
    >>> import numpy as np
    >>> p = np.full((8, 8), 0.2); p[2:6, 2:6] = 0.9
    >>> bool(np.abs(phase_field_regularise(p, lam=0.0, steps=5) - p).max() < 1e-2)
    True
    >>> smooth = phase_field_regularise(p, lam=3.0)
    >>> bool(smooth[4, 4] > 0.5 > smooth[0, 0])
    True
    """
    noisy = np.asarray(noisy)
    if noisy.ndim != 2 or noisy.size == 0:
        raise ValueError(f"noisy must be a non-empty 2D array, got shape {noisy.shape}")
    if not np.all(np.isfinite(noisy)) or noisy.min() < 0 or noisy.max() > 1:
        raise ValueError("noisy must hold finite probabilities in [0, 1]")
    lam = validate_number(lam, "lam", low=0.0)
    epsilon = validate_number(epsilon, "epsilon", low=0.0, low_inclusive=False)
    steps = validate_number(steps, "steps", low=0, integer=True)
    lr = validate_number(lr, "lr", low=0.0, low_inclusive=False)
    target = torch.as_tensor(noisy, dtype=torch.float32)[None, None]
    z = torch.logit(target.clamp(1e-3, 1 - 1e-3)).clone().requires_grad_(True)
    optimiser = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        u = torch.sigmoid(z)
        objective = (u - target).square().mean() + lam * phase_field_energy(
            u, epsilon=epsilon, reduction="mean")
        optimiser.zero_grad()
        objective.backward()
        optimiser.step()
    return torch.sigmoid(z).detach()[0, 0].numpy().astype(np.float64)


def physics_objective(data_term, lambda_rd=10.0, lambda_pf=3.0, D=0.25, epsilon=1.0, threshold=0.5):
    r"""A training loss with physics priors: data term plus PDE penalties on the foreground probability.

    Builds

    .. math:: \mathcal J = \mathcal L_{\mathrm{data}}
              + \lambda_{\mathrm{RD}}\,\mathcal R_{\mathrm{RD}}(p)
              + \lambda_{\mathrm{PF}}\,E_\varepsilon(p),
              \qquad p = \sigma(z),

    with :math:`z` the probability logit of a flow model
    (``model.split(output)["logits"]``), :math:`\mathcal R_{\mathrm{RD}}` the
    mean squared steady reaction-diffusion residual
    (:func:`reaction_diffusion_residual`) and :math:`E_\varepsilon` the
    Modica-Mortola energy density (:func:`phase_field_energy` with
    ``reduction="mean"``).

    Parameters
    ----------
    data_term : callable
        ``data_term(output, target, model)``, e.g.
        ``fieldseg_core.train.loss_for("flows")``.
    lambda_rd, lambda_pf : float
        Weights (>= 0) of the residual and of the energy; 0 switches a term off
        (with both 0 the objective is the data term itself).
    D : float
        Diffusion coefficient of the residual (> 0); ``epsilon**2 / 4`` makes
        both penalties prefer the same interface width.
    epsilon : float
        Interface width of the energy (> 0).
    threshold : float
        Unstable state ``a`` of the bistable reaction, in (0, 1).

    Returns
    -------
    callable
        ``loss(output, target, model)`` returning a scalar tensor, the
        signature :func:`fieldseg_core.train.train` expects.

    Notes
    -----
    A penalty method: the PDEs are priors traded against the data by the
    weights, not constraints the output satisfies. The model must expose
    ``split(output)`` with a ``"logits"`` entry (the flow models of
    :mod:`fieldseg_core.models` do).

    References
    ----------
    .. [1] *PDE-Constrained Optimization for Neural Image Segmentation with
       Physics Priors*, arXiv preprint, 2026.
    .. [2] J. Nocedal, S. J. Wright, *Numerical Optimization*, 2nd ed.,
       Springer, 2006, ch. 17 (quadratic penalty method).

    Examples
    --------
    >>> import torch
    >>> class Flows:
    ...     def split(self, output):
    ...         return {"flows": output[:, :2], "logits": output[:, 2:]}
    >>> zero = lambda output, target, model: output.sum() * 0
    >>> output = torch.zeros(1, 3, 8, 8)      # p = 0.5 everywhere
    >>> loss = physics_objective(zero, lambda_rd=1.0, lambda_pf=1.0, epsilon=2.0)
    >>> round(float(loss(output, None, Flows())), 6)   # W(1/2) / epsilon = 0.0625 / 2
    0.03125
    """
    if not callable(data_term):
        raise TypeError(f"data_term must be callable as data_term(output, target, model), got {type(data_term).__name__}")
    lambda_rd = validate_number(lambda_rd, "lambda_rd", low=0.0)
    lambda_pf = validate_number(lambda_pf, "lambda_pf", low=0.0)
    D = validate_number(D, "D", low=0.0, low_inclusive=False)
    epsilon = validate_number(epsilon, "epsilon", low=0.0, low_inclusive=False)
    threshold = validate_number(threshold, "threshold", low=0.0, high=1.0, low_inclusive=False,
                                high_inclusive=False)

    def loss(output, target, model):
        total = data_term(output, target, model)
        if not (lambda_rd or lambda_pf):
            return total
        prob = torch.sigmoid(model.split(output)["logits"])
        if lambda_rd:
            total = total + lambda_rd * reaction_diffusion_residual(prob, D=D, threshold=threshold)
        if lambda_pf:
            total = total + lambda_pf * phase_field_energy(prob, epsilon=epsilon, reduction="mean")
        return total

    return loss


__all__ += ["physics_objective"]


# --------------------------------------------------------------------------- #
# loss recipes of the training studies (SDF ablation, Peters' vector fields)
# --------------------------------------------------------------------------- #
#: Zero-level-set conventions of a pixel SDF, with the prediction threshold
#: offset that goes with each (see :func:`sdf_convention_targets`).
SDF_CONVENTIONS = {"between": 0.0, "on_pixels": -0.5}


def sdf_convention_targets(phi_gt, convention="between"):
    """Distance target and cross-entropy target of an SDF under a zero-level-set convention.

    Parameters
    ----------
    phi_gt : torch.Tensor
        Signed distance of :func:`fieldseg_core.fields.signed_distance_field`
        (positive inside, distances between pixel centres, so every cell pixel
        has :math:`\\phi \\ge 1` and every background pixel :math:`\\phi \\le -1`),
        ``(B, C, *spatial)``.
    convention : {"between", "on_pixels"}
        Where the zero level set lies relative to the pixel centres.

    Returns
    -------
    phi : torch.Tensor
        The distance target of the LSE and MHD terms.
    inside : torch.Tensor
        The cross-entropy target :math:`S_{GT}` in [0, 1].

    Notes
    -----
    - ``"between"`` (the package's SDF): the contour runs between the outer
      ring of cell pixels (:math:`\\phi = 1`) and the first background pixels
      (:math:`\\phi = -1`); ``phi = phi_gt`` and ``inside = phi_gt > 0``.
      No pixel centre lies on the contour, so at the SDF paper's
      :math:`\\alpha = 4` the soft boundary map is at most
      :math:`\\sigma(4)\\sigma(-4) \\approx 0.018` on the grid.
    - ``"on_pixels"``: the contour runs through the centres of the outer ring
      of cell pixels. Cell pixels move down by one pixel,
      ``phi = phi_gt - 1`` where ``phi_gt > 0`` (the background keeps its
      values), and the cross-entropy target is 1/2 on the ring
      (``0 < phi_gt <= 1``), 1 deeper inside and 0 outside, so that every
      term puts the contour in the same place. The soft boundary map then
      peaks at 1/4 on real pixels.

    Predictions are thresholded half-way between the last inside and the first
    outside pixel: at :math:`\\phi > 0` for ``"between"`` and at
    :math:`\\phi > -1/2` for ``"on_pixels"`` (:data:`SDF_CONVENTIONS` holds
    these offsets; a learned sigmoid offset :math:`-\\beta/\\alpha` adds to them).
    The SDF paper does not say which convention it uses.

    References
    ----------
    .. [1] The SDF paper, Sec. 2 (eqs. 3, 6-12).

    Examples
    --------
    >>> import torch
    >>> phi = torch.tensor([[[[-2.0, -1.0, 1.0, 2.0, 3.0]]]])
    >>> shifted, inside = sdf_convention_targets(phi, "on_pixels")
    >>> shifted.flatten().tolist(), inside.flatten().tolist()
    ([-2.0, -1.0, 0.0, 1.0, 2.0], [0.0, 0.0, 0.5, 1.0, 1.0])
    """
    _validate_tensor(phi_gt, "phi_gt")
    if convention not in SDF_CONVENTIONS:
        raise ValueError(f"convention must be one of {tuple(SDF_CONVENTIONS)}, got {convention!r}")
    inside = (phi_gt > 0).to(phi_gt.dtype)
    if convention == "between":
        return phi_gt, inside
    ring = (phi_gt > 0) & (phi_gt <= 1)
    return torch.where(phi_gt > 0, phi_gt - 1, phi_gt), torch.where(ring, 0.5 * inside, inside)


def sdf_ablation_loss(output, target, model=None, weights=(0.9, 0.1, 1.0, 1.0), convention="between"):
    """The SDF paper's unified loss with chosen terms, under a zero-level-set convention.

    Parameters
    ----------
    output : torch.Tensor
        Predicted signed distance ``(B, 1, *spatial)``.
    target : torch.Tensor
        Target of :func:`fieldseg_core.data.make_target` for ``"sdf"``.
    model : torch.nn.Module, optional
        Its ``sigmoid`` (a :class:`~fieldseg_core.models.LearnableSigmoid`) is
        used when present, else the plain logistic function.
    weights : sequence of 4 floats
        :math:`(\\lambda_{LMHD}, \\lambda_{RMHD}, \\lambda_{LSE}, \\lambda_{CE})`;
        a zero switches a term off (the rows of the SDF paper's Table 1).
    convention : {"between", "on_pixels"}
        See :func:`sdf_convention_targets`.

    Returns
    -------
    loss : torch.Tensor
        0-d tensor, every term averaged over pixels (``reduction="mean"``), as
        :func:`fieldseg_core.train.loss_for` does for ``"sdf"``.

    Notes
    -----
    With the default weights and ``"between"`` this is exactly the loss
    :func:`fieldseg_core.train.loss_for` uses for the SDF. The signature
    ``(output, target, model)`` is the one :func:`fieldseg_core.train.train`
    expects; bind ``weights`` and ``convention`` with :func:`functools.partial`.

    References
    ----------
    .. [1] The SDF paper, eq. 13 and Table 1.

    Examples
    --------
    >>> import torch
    >>> phi = torch.tensor([[[[-2.0, -1.0, 1.0, 2.0]]]])
    >>> float(sdf_ablation_loss(phi, phi, weights=(0, 0, 1, 0)))    # the LSE alone
    0.0
    """
    sigmoid = getattr(model, "sigmoid", None)
    phi, inside = sdf_convention_targets(target, convention)
    total, _ = unified_sdf_loss(output, phi, sigmoid=sigmoid, target=inside, weights=weights,
                                reduction="mean")
    return total


def sdf_ce_only_loss(output, target, model=None):
    """Cross-entropy alone on the sigmoid-mapped SDF (the baseline of chapter 7).

    Parameters
    ----------
    output : torch.Tensor
        Predicted signed distance ``(B, 1, *spatial)``.
    target : torch.Tensor
        SDF target (positive inside); only its sign is used.
    model : torch.nn.Module, optional
        Supplies the learnable sigmoid (``model.sigmoid``).

    Returns
    -------
    loss : torch.Tensor
        0-d tensor, :func:`sdf_cross_entropy` of the inside mask
        ``target > 0``, averaged over pixels.

    Examples
    --------
    >>> import torch
    >>> round(float(sdf_ce_only_loss(torch.zeros(1, 1, 1, 2), torch.tensor([[[[-1.0, 1.0]]]]))), 4)
    0.6931
    """
    _validate_tensor(target, "target")
    inside = (target > 0).to(output.dtype)
    return sdf_cross_entropy(output, inside, sigmoid=getattr(model, "sigmoid", None),
                             reduction="mean")


def vector_field_loss(output, target, model=None, weights=(1.0, 1.0, 1.0), n_iter=25, step=0.1,
                      max_points=None, tversky_alpha=0.5, tversky_beta=0.5, return_parts=False):
    """Peters' training loss: IVP plus MSE on the vector field, Tversky on the foreground.

    Parameters
    ----------
    output : torch.Tensor
        Network output ``(B, ndim + 1, *spatial)``: the vector field (in the
        target's units, no Cellpose scaling) and a foreground logit.
    target : torch.Tensor
        ``(B, ndim + 1, *spatial)``: the true vector field and the foreground
        (0/1) as the last channel.
    model : torch.nn.Module, optional
        Unused; the signature is the one :func:`fieldseg_core.train.train` expects.
    weights : sequence of 3 floats
        :math:`(\\alpha_0, \\alpha_1, \\alpha_2)` of IVP, MSE and Tversky; a
        zero switches a term off (``(0, 1, 1)`` trains without the IVP loss).
    n_iter, step : int, float
        Euler steps and step size of the IVP term (Peters: 25 and 0.1).
    max_points : int, optional
        Subsample the foreground for the IVP term (:func:`ivp_loss`).
    tversky_alpha, tversky_beta : float
        Weights of false positives and false negatives (:func:`tversky_loss`).
    return_parts : bool
        Also return the unweighted terms ``{"ivp", "mse", "tversky"}``.

    Returns
    -------
    loss : torch.Tensor
        0-d tensor (and the parts with ``return_parts``).

    Notes
    -----
    .. math:: \\mathcal L = \\alpha_0 \\mathcal L_{IVP} + \\alpha_1 \\mathcal L_{MSE}
        + \\alpha_2 \\mathcal L_{Tversky}

    (Peters, Sec. 6.3). The IVP term integrates the true foreground pixels
    through both fields (:func:`ivp_loss`); the MSE is taken over all pixels
    and components; the Tversky term scores the foreground logit. Peters does
    not state the weights or the Tversky parameters in the text; the defaults
    (all weights 1, :math:`\\alpha = \\beta = 1/2`, the soft Dice loss) are
    ours.

    References
    ----------
    .. [1] Peters, *Vector fields for instance segmentation*, Sec. 5 and 6.3.

    Examples
    --------
    >>> import torch
    >>> target = torch.zeros(1, 3, 4, 4); target[:, 2, 1:3, 1:3] = 1.0
    >>> output = torch.zeros(1, 3, 4, 4); output[:, 2] = 50 * (2 * target[:, 2] - 1)
    >>> round(float(vector_field_loss(output, target, tversky_beta=0.5)), 4)   # perfect
    0.0
    """
    _validate_tensor(output, "output")
    _validate_tensor(target, "target")
    _validate_same_shape(output, target, "output", "target")
    ndim = output.dim() - 2
    if output.shape[1] != ndim + 1:
        raise ValueError(f"output must have ndim + 1 = {ndim + 1} channels (vector field + "
                         f"foreground logit), got {output.shape[1]}")
    try:
        weights = tuple(weights)
    except TypeError:
        raise TypeError("weights must be a sequence of 3 real numbers") from None
    if len(weights) != 3:
        raise ValueError(f"weights must have 3 entries (ivp, mse, tversky), got {len(weights)}")
    weights = tuple(validate_number(w, f"weights[{i}]", low=0.0) for i, w in enumerate(weights))
    pred_flows, logits = output[:, :ndim], output[:, ndim:]
    true_flows, inside = target[:, :ndim], target[:, ndim:]
    parts = {"mse": F.mse_loss(pred_flows, true_flows),
             "tversky": tversky_loss(logits, inside, alpha=tversky_alpha, beta=tversky_beta)}
    if weights[0] > 0:
        parts["ivp"] = ivp_loss(pred_flows, true_flows, inside > 0.5, n_iter=n_iter, step=step,
                                max_points=max_points)
    else:
        parts["ivp"] = _zero_like_graph(output)
    total = weights[0] * parts["ivp"] + weights[1] * parts["mse"] + weights[2] * parts["tversky"]
    if return_parts:
        return total, parts
    return total


__all__ += ["SDF_CONVENTIONS", "sdf_convention_targets", "sdf_ablation_loss", "sdf_ce_only_loss",
            "vector_field_loss"]
