"""Tests for fieldseg_core.losses: hand-computed values on tiny tensors,
gradient flow and the analytic properties of the physics priors."""

import math

import pytest
import torch

from fieldseg_core.losses import (
    field_l1_loss,
    flow_loss,
    ivp_loss,
    modified_hausdorff_terms,
    phase_field_energy,
    reaction_diffusion_residual,
    sdf_cross_entropy,
    soft_boundary,
    tanh_lsq_loss,
    tversky_loss,
    unified_sdf_loss,
)
from fieldseg_core.models import LearnableSigmoid


def sig(z):
    return 1.0 / (1.0 + math.exp(-z))


def t(values):
    """A (1, 1, 1, W) float64 tensor from a list."""
    return torch.tensor(values, dtype=torch.float64).reshape(1, 1, 1, -1)


def close(a, b, tol=1e-9):
    a, b = (x.item() if isinstance(x, torch.Tensor) else x for x in (a, b))
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


# --------------------------------------------------------------------------- #
# l1 field loss
# --------------------------------------------------------------------------- #
def test_field_l1_loss_hand_value():
    pred = t([0.5, 1.0, 0.0, 2.0])
    target = t([0.0, 1.5, 0.0, 1.0])
    # |r| = 0.5, 0.5, 0, 1 -> mean 2 / 4
    assert close(field_l1_loss(pred, target), 0.5)
    # mask keeps pixels 0 and 3 -> (0.5 + 1) / 2
    mask = torch.tensor([[[True, False, False, True]]])
    assert close(field_l1_loss(pred, target, mask), 0.75)
    # the same mask with an explicit channel axis
    assert close(field_l1_loss(pred, target, mask[:, None]), 0.75)


def test_field_l1_loss_empty_mask_is_zero_with_graph():
    pred = t([1.0, 2.0]).requires_grad_()
    loss = field_l1_loss(pred, torch.zeros_like(pred), torch.zeros(1, 1, 2, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(pred.grad, torch.zeros_like(pred))


def test_field_l1_loss_validation():
    with pytest.raises(ValueError, match="pred and target"):
        field_l1_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 5))
    with pytest.raises(ValueError, match="mask"):
        field_l1_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4), torch.ones(1, 4, 5))
    with pytest.raises(TypeError, match="pred"):
        field_l1_loss(torch.zeros(1, 1, 4, 4, dtype=torch.int64), torch.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="pred"):
        field_l1_loss(torch.zeros(4, 4), torch.zeros(4, 4))


# --------------------------------------------------------------------------- #
# flows
# --------------------------------------------------------------------------- #
def test_flow_loss_hand_value():
    # two pixels; channels dy, dx, logit
    pred = torch.tensor([[[[1.0, 0.0]], [[0.0, 2.0]], [[math.log(3.0), 0.0]]]], dtype=torch.float64)
    flows = torch.tensor([[[[0.2, 0.0]], [[0.0, 0.2]]]], dtype=torch.float64)
    prob = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    # 5 * flows = [[1, 0], [0, 1]]; squared errors 0, 0, 0, 1 -> MSE 1/4
    # BCE(log 3, 1) = -log(3/4); BCE(0, 0) = log 2 -> mean log(8/3) / 2
    loss, parts = flow_loss(pred, flows, prob, return_parts=True)
    assert close(parts["flow"], 0.25)
    assert close(parts["prob"], 0.5 * math.log(8.0 / 3.0))
    assert close(loss, 0.25 + 0.5 * math.log(8.0 / 3.0))
    # flow_scale = 1: errors (1-0.2)^2, 0, 0, (2-0.2)^2 -> (0.64 + 3.24) / 4
    assert close(flow_loss(pred, flows, prob, flow_scale=1.0, return_parts=True)[1]["flow"], 0.97)


def test_flow_loss_3d_and_validation():
    pred = torch.zeros(1, 4, 2, 3, 3)
    assert torch.isfinite(flow_loss(pred, torch.zeros(1, 3, 2, 3, 3), torch.zeros(1, 2, 3, 3)))
    with pytest.raises(ValueError, match="pred must have ndim \\+ 1 = 3 channels"):
        flow_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="target_flows"):
        flow_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 5), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="target_prob"):
        flow_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 4), torch.full((1, 4, 4), 2.0))
    with pytest.raises(ValueError, match="flow_scale"):
        flow_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 4), flow_scale=0.0)


# --------------------------------------------------------------------------- #
# SDF losses (the SDF paper)
# --------------------------------------------------------------------------- #
def test_soft_boundary_hand_values():
    phi = t([0.0, 1.0, -2.0])
    # sigma(p) sigma(-p): 1/4, sigma(1) sigma(-1), sigma(-2) sigma(2)
    expected = [0.25, sig(1) * sig(-1), sig(2) * sig(-2)]
    assert torch.allclose(soft_boundary(phi).flatten(), torch.tensor(expected, dtype=torch.float64))
    # learnable sigmoid, literal eq. 6: sigma(a p + b) * sigma(-a p + b)
    s = LearnableSigmoid(alpha=2.0, beta=0.5).double()
    got = soft_boundary(t([0.5]), s)
    assert close(got, sig(1.5) * sig(-0.5))


def test_modified_hausdorff_terms_hand_values():
    s = LearnableSigmoid().double()  # alpha 4, beta 0
    phi_gt = t([0.0, 0.5])
    phi_pred = t([0.25, -0.25])
    # B_gt = [sigma(0)^2, sigma(2) sigma(-2)]; |2 sigma(4 phi_pred) - 1| = tanh(1/2) twice
    left_expected = (0.25 + sig(2) * sig(-2)) * math.tanh(0.5)
    # B_pred = sigma(1) sigma(-1) twice; |tanh_ab(phi_gt)| = [0, tanh(1)]
    right_expected = sig(1) * sig(-1) * math.tanh(1.0)
    left, right = modified_hausdorff_terms(phi_pred, phi_gt, s)
    assert close(left, left_expected) and close(right, right_expected)
    # "mean" divides the per-image sum by the 2 pixels
    left_m, right_m = modified_hausdorff_terms(phi_pred, phi_gt, s, reduction="mean")
    assert close(left_m, left_expected / 2) and close(right_m, right_expected / 2)


def test_modified_hausdorff_zero_when_boundaries_match_sharply():
    # A very steep sigmoid makes B a sharp boundary indicator and tanh a sign:
    # when both SDFs vanish on the same pixel, every product is ~0.
    s = LearnableSigmoid(alpha=200.0).double()
    phi = t([-2.0, -1.0, 0.0, 1.0, 2.0])
    left, right = modified_hausdorff_terms(phi, phi, s)
    assert left.item() < 1e-12 and right.item() < 1e-12
    # shifting the predicted boundary by one pixel costs about 1/4 per term
    left, right = modified_hausdorff_terms(phi + 1.0, phi, s)
    assert close(left, 0.25, tol=1e-6) and close(right, 0.25, tol=1e-6)


def test_tanh_lsq_and_cross_entropy_hand_values():
    s = LearnableSigmoid(alpha=2.0, beta=0.0).double()
    phi_pred = t([0.5, 0.0])
    phi_gt = t([0.0, 1.0])
    # tanh_ab(z) = tanh(alpha z / 2): pred [tanh(0.5), 0], gt [0, tanh(1)]
    assert close(tanh_lsq_loss(phi_pred, phi_gt, s), math.tanh(0.5) ** 2 + math.tanh(1.0) ** 2)
    # CE with S = [0, 1]: -log(1 - sigma(1)) - log(sigma(0))
    target = t([0.0, 1.0])
    assert close(sdf_cross_entropy(phi_pred, target, s), -math.log(1 - sig(1.0)) + math.log(2.0))


def test_unified_sdf_loss_weights_follow_paper_order():
    s = LearnableSigmoid().double()
    phi_gt = torch.linspace(-2, 2, 12, dtype=torch.float64).reshape(1, 1, 3, 4)
    phi_pred = phi_gt.flip(-1) * 0.7 + 0.1
    total, parts = unified_sdf_loss(phi_pred, phi_gt, s)
    left, right = modified_hausdorff_terms(phi_pred, phi_gt, s)
    assert close(parts["lmhd"], left) and close(parts["rmhd"], right)
    assert close(parts["lse"], tanh_lsq_loss(phi_pred, phi_gt, s))
    assert close(parts["ce"], sdf_cross_entropy(phi_pred, (phi_gt > 0).double(), s))
    assert close(total, 0.9 * left + 0.1 * right + parts["lse"] + parts["ce"])
    for i, key in enumerate(("lmhd", "rmhd", "lse", "ce")):
        one_hot = [0.0] * 4
        one_hot[i] = 1.0
        assert close(unified_sdf_loss(phi_pred, phi_gt, s, weights=one_hot)[0], parts[key])


def _central_difference(f, param, h=1e-6):
    with torch.no_grad():
        param += h
        up = float(f())
        param -= 2 * h
        down = float(f())
        param += h
    return (up - down) / (2 * h)


def test_sdf_gradients_reach_alpha_beta_and_prediction():
    s = LearnableSigmoid(alpha=3.0, beta=0.2).double()
    phi_gt = torch.linspace(-3, 3, 16, dtype=torch.float64).reshape(1, 1, 4, 4)
    phi_pred = (0.5 * phi_gt + 0.3).requires_grad_()
    total, _ = unified_sdf_loss(phi_pred, phi_gt, s)
    total.backward()
    # Gradients equal finite differences of the loss (float64), not merely non-zero.
    def loss():
        return unified_sdf_loss(phi_pred.detach(), phi_gt, s)[0]

    for param in (s.alpha, s.beta):
        assert math.isclose(float(param.grad), _central_difference(loss, param), rel_tol=1e-6)
    assert torch.autograd.gradcheck(lambda p: unified_sdf_loss(p, phi_gt, s)[0], (phi_pred,))
    # the right MHD term depends on the prediction only through B_PRED
    phi_pred.grad = None
    modified_hausdorff_terms(phi_pred, phi_gt, s)[1].backward()
    assert phi_pred.grad.abs().sum() > 0


def test_sdf_validation():
    a = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="phi_pred and phi_gt"):
        modified_hausdorff_terms(a, torch.zeros(1, 1, 4, 5))
    with pytest.raises(TypeError, match="sigmoid"):
        soft_boundary(a, sigmoid=torch.sigmoid)
    with pytest.raises(ValueError, match="reduction"):
        tanh_lsq_loss(a, a, reduction="max")
    with pytest.raises(ValueError, match="weights"):
        unified_sdf_loss(a, a, weights=(1.0, 1.0))
    with pytest.raises(ValueError, match="target"):
        sdf_cross_entropy(a, torch.full((1, 1, 4, 4), 3.0))


# --------------------------------------------------------------------------- #
# IVP loss (Peters)
# --------------------------------------------------------------------------- #
def _constant_flows(batch_vectors, shape=(12, 12)):
    """Flows (B, 2, H, W) equal to one constant vector per batch element."""
    v = torch.tensor(batch_vectors, dtype=torch.float64)
    return v[:, :, None, None].expand(-1, -1, *shape).contiguous()


def test_ivp_loss_constant_flows_analytic():
    # Constant fields: P_i = P_0 + i h v, so |P^_i - P_i|^2 = (i h |dv|)^2 and
    # L = h^2 |dv|^2 * sum_{i=0}^{n} i^2 / n = h^2 |dv|^2 (n + 1)(2n + 1) / 6.
    # Start in the middle so nothing reaches the clamp (max travel 3 * 0.5 * 1).
    mask = torch.zeros(1, 12, 12, dtype=torch.bool)
    mask[0, 5:7, 5:7] = True
    pred = _constant_flows([[1.0, 0.0]])
    true = _constant_flows([[0.0, 0.0]])
    n, h = 3, 0.5
    expected = h**2 * 1.0 * (n + 1) * (2 * n + 1) / 6  # 0.25 * 28 / 6
    assert close(ivp_loss(pred, true, mask, n_iter=n, step=h), expected)


def test_ivp_loss_variable_foreground_counts_average_over_points():
    # image 0: one foreground pixel, flows differ by (0, 1); image 1: three
    # pixels, identical flows. The padded points of image 0 must not count:
    # L = (1 * c + 3 * 0) / 4 with c = h^2 (n + 1)(2n + 1) / 6.
    mask = torch.zeros(2, 12, 12, dtype=torch.bool)
    mask[0, 6, 6] = True
    mask[1, 4, 4:7] = True
    pred = _constant_flows([[0.0, 1.0], [1.0, 1.0]])
    true = _constant_flows([[0.0, 0.0], [1.0, 1.0]])
    n, h = 4, 0.25
    c = h**2 * (n + 1) * (2 * n + 1) / 6
    assert close(ivp_loss(pred, true, mask, n_iter=n, step=h), c / 4)
    # keep at most 2 points per image: image 1 then has 2 -> (c + 0) / 3
    assert close(ivp_loss(pred, true, mask, n_iter=n, step=h, max_points=2), c / 3)


def test_ivp_loss_zero_for_identical_flows_and_gradient_reaches_prediction():
    g = torch.Generator().manual_seed(0)
    true = torch.randn(2, 2, 10, 10, generator=g)
    mask = torch.rand(2, 10, 10, generator=g) > 0.5
    assert float(ivp_loss(true, true, mask)) == 0.0
    pred = (true + 0.3 * torch.randn(2, 2, 10, 10, generator=g)).requires_grad_()
    loss = ivp_loss(pred, true, mask, n_iter=10, step=0.5)
    loss.backward()
    assert loss.item() > 0
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_ivp_loss_subsampling_is_seeded():
    g = torch.Generator().manual_seed(1)
    pred, true = torch.randn(2, 1, 2, 9, 9, generator=g)
    mask = torch.ones(1, 9, 9, dtype=torch.bool)
    a = ivp_loss(pred, true, mask, n_iter=5, max_points=7, seed=3)
    b = ivp_loss(pred, true, mask, n_iter=5, max_points=7, seed=3)
    assert torch.equal(a, b)


def test_ivp_loss_empty_mask_and_validation():
    flows = torch.zeros(1, 2, 5, 5, requires_grad=True)
    loss = ivp_loss(flows, flows.detach(), torch.zeros(1, 5, 5))
    loss.backward()
    assert loss.item() == 0.0
    with pytest.raises(ValueError, match="pred_flows must have one channel per spatial axis"):
        ivp_loss(torch.zeros(1, 3, 5, 5), torch.zeros(1, 3, 5, 5), torch.ones(1, 5, 5))
    with pytest.raises(ValueError, match="mask"):
        ivp_loss(torch.zeros(1, 2, 5, 5), torch.zeros(1, 2, 5, 5), torch.ones(1, 5, 4))
    with pytest.raises(ValueError, match="n_iter"):
        ivp_loss(torch.zeros(1, 2, 5, 5), torch.zeros(1, 2, 5, 5), torch.ones(1, 5, 5), n_iter=0)


# --------------------------------------------------------------------------- #
# Tversky
# --------------------------------------------------------------------------- #
def test_tversky_loss_hand_values():
    logits = t([0.0, 0.0, math.log(3.0), -math.log(3.0)])
    target = t([1.0, 0.0, 1.0, 0.0])
    # p = [1/2, 1/2, 3/4, 1/4]; TP = 1/2 + 3/4 = 5/4; FP = 1/2 + 1/4 = 3/4;
    # FN = 1/2 + 1/4 = 3/4
    # alpha = 0.7, beta = 0.3, smooth = 1: 1 - (9/4) / (5/4 + 0.525 + 0.225 + 1)
    expected = 1 - 2.25 / (1.25 + 0.7 * 0.75 + 0.3 * 0.75 + 1.0)
    assert close(tversky_loss(logits, target, alpha=0.7, beta=0.3), expected)
    # alpha = beta = 1/2, smooth = 0 is 1 - Dice = 1 - 2 TP / (2 TP + FP + FN)
    assert close(tversky_loss(logits, target, smooth=0.0), 1 - 2.5 / (2.5 + 1.5))


def test_tversky_loss_perfect_prediction_and_batch_mean():
    target = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 0.0]]]], dtype=torch.float64)
    logits = (target * 2 - 1) * 100
    assert float(tversky_loss(logits, target)) < 1e-12
    with pytest.raises(ValueError, match="logits and target"):
        tversky_loss(logits, target[:1])


# --------------------------------------------------------------------------- #
# physics priors (the physics-priors preprint)
# --------------------------------------------------------------------------- #
def test_reaction_diffusion_residual_hand_value():
    u = torch.zeros(1, 1, 3, 4, dtype=torch.float64)
    u[0, 0, 1, 1] = 0.5
    # interior pixels (1,1) and (1,2):
    # (1,1): Lap = -4 * 0.5 = -2, f(0.5) = 0.5 * 0.5 * (0.5 - 0.25) = 1/16
    #        r = 2 * -2 + 1/16
    # (1,2): Lap = 0.5 (left neighbour), f(0) = 0 -> r = 2 * 0.5 = 1
    r1, r2 = 2 * -2 + 1 / 16, 1.0
    got = reaction_diffusion_residual(u, D=2.0, reaction="bistable", threshold=0.25)
    assert close(got, (r1**2 + r2**2) / 2)
    # logistic f(u) = u (1 - u): f(0.5) = 1/4
    got = reaction_diffusion_residual(u, D=2.0, reaction="logistic")
    assert close(got, ((-4 + 0.25) ** 2 + 1.0) / 2)


def test_reaction_diffusion_residual_zero_on_exact_discrete_solution():
    # u = cos(w1 y) cos(w2 x) is an eigenfunction of the 5-point Laplacian:
    # Lap u = (2 cos w1 - 2 + 2 cos w2 - 2) u, so D Lap u + c u = 0 for
    # c = D (4 - 2 cos w1 - 2 cos w2).
    D, w1, w2 = 0.7, 0.3, 0.45
    y = torch.arange(9, dtype=torch.float64)[:, None]
    x = torch.arange(11, dtype=torch.float64)[None, :]
    u = (torch.cos(w1 * y) * torch.cos(w2 * x))[None, None]
    c = D * (4 - 2 * math.cos(w1) - 2 * math.cos(w2))
    assert float(reaction_diffusion_residual(u, D=D, reaction=lambda v: c * v)) < 1e-24
    assert float(reaction_diffusion_residual(u, D=D, reaction=lambda v: 1.1 * c * v)) > 1e-6
    # 3D: a linear ramp is discretely harmonic
    z = torch.arange(4, dtype=torch.float64)
    ramp = (z[:, None, None] + 2 * z[None, :, None] - z[None, None, :])[None, None]
    assert float(reaction_diffusion_residual(ramp, reaction=None)) < 1e-24
    # the stable states of the bistable reaction
    for value in (0.0, 1.0, 0.3):
        u = torch.full((1, 1, 5, 5), value, dtype=torch.float64)
        assert float(reaction_diffusion_residual(u, threshold=0.3)) < 1e-30


def test_reaction_diffusion_prefers_standing_front_width():
    # For a = 1/2 the front sigma(x / sqrt(2 D)) solves D u'' + u(1-u)(u-1/2) = 0.
    D = 4.0
    x = torch.arange(-30, 31, dtype=torch.float64)

    def front(k):
        return torch.sigmoid(k * x).expand(3, -1)[None, None]
    k_star = 1 / math.sqrt(2 * D)
    best = float(reaction_diffusion_residual(front(k_star), D=D))
    for k in (0.5 * k_star, 2 * k_star):
        assert float(reaction_diffusion_residual(front(k), D=D)) > 50 * best


def test_reaction_diffusion_validation():
    with pytest.raises(ValueError, match="at least 3"):
        reaction_diffusion_residual(torch.zeros(1, 1, 2, 5))
    with pytest.raises(ValueError, match="reaction"):
        reaction_diffusion_residual(torch.zeros(1, 1, 4, 4), reaction="cubic")
    with pytest.raises(ValueError, match="D"):
        reaction_diffusion_residual(torch.zeros(1, 1, 4, 4), D=-1.0)


def test_phase_field_energy_pure_phases_and_interface():
    for value in (0.0, 1.0):
        assert float(phase_field_energy(torch.full((2, 1, 6, 6), value))) == 0.0
    u = torch.zeros(1, 1, 6, 6)
    u[..., 3:] = 1.0
    # six rows, each with one unit jump; W = 0 everywhere: eps / 2 * 6
    assert close(phase_field_energy(u, epsilon=3.0), 9.0, tol=1e-6)
    # a mid-value pixel: W(1/2) = 1/16, and its two jumps of 1/2 to 0
    v = torch.zeros(1, 1, 1, 3)
    v[..., 1] = 0.5
    assert close(phase_field_energy(v, epsilon=2.0), 0.5 * 2.0 * (0.25 + 0.25) + (1 / 16) / 2.0, tol=1e-6)
    assert close(phase_field_energy(v, epsilon=2.0, reduction="mean"), (0.5 + 1 / 32) / 3, tol=1e-6)


@pytest.mark.parametrize("factor", [0.5, 1.0, 2.0])
def test_phase_field_energy_of_sigmoid_profile_matches_theory(factor):
    # u = sigma(k x) has energy (1/6)(eps k / 2 + 1 / (eps k)) per unit length;
    # k* = sqrt(2) / eps gives the minimum sqrt(2) / 6 (Modica-Mortola).
    eps, rows = 6.0, 4
    k = factor * math.sqrt(2) / eps
    x = torch.arange(-80, 81, dtype=torch.float64)
    u = torch.sigmoid(k * x).expand(rows, -1)[None, None]
    per_length = float(phase_field_energy(u, epsilon=eps)) / rows
    expected = (eps * k / 2 + 1 / (eps * k)) / 6
    assert math.isclose(per_length, expected, rel_tol=0.01)
    if factor != 1.0:
        assert per_length > math.sqrt(2) / 6 * 1.05


def test_phase_field_energy_is_differentiable_and_batch_mean():
    u = torch.rand(3, 1, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    u.requires_grad_()
    e = phase_field_energy(u, epsilon=1.5)
    e.backward()
    assert u.grad.abs().sum() > 0
    each = [float(phase_field_energy(u[i:i + 1].detach(), epsilon=1.5)) for i in range(3)]
    assert close(e, sum(each) / 3)
    with pytest.raises(ValueError, match="epsilon"):
        phase_field_energy(u, epsilon=0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_losses_run_on_cuda():
    dev = torch.device("cuda")
    g = torch.Generator().manual_seed(0)
    flows = torch.randn(2, 2, 16, 16, generator=g)
    pred = (flows + 0.1 * torch.randn(2, 2, 16, 16, generator=g)).to(dev).requires_grad_()
    mask = (torch.rand(2, 16, 16, generator=g) > 0.5).to(dev)
    cpu = ivp_loss(pred.detach().cpu(), flows, mask.cpu(), max_points=20)
    gpu = ivp_loss(pred, flows.to(dev), mask, max_points=20)
    gpu.backward()
    assert math.isclose(gpu.item(), cpu.item(), rel_tol=1e-4)
    s = LearnableSigmoid().to(dev)
    phi = torch.randn(2, 1, 8, 8, generator=g).to(dev)
    total, _ = unified_sdf_loss(phi, phi.flip(-1), s)
    total.backward()
    assert s.alpha.grad.abs() > 0
    u = torch.rand(2, 1, 8, 8, generator=g).to(dev)
    assert torch.isfinite(reaction_diffusion_residual(u) + phase_field_energy(u))
    assert torch.isfinite(tversky_loss(phi, (phi > 0).float()) + flow_loss(
        torch.randn(2, 3, 8, 8, device=dev), torch.zeros(2, 2, 8, 8, device=dev),
        torch.zeros(2, 8, 8, device=dev)))


def test_phase_field_regularise_fits_at_zero_weight_and_lowers_the_energy():
    import numpy as np

    from fieldseg_core.losses import phase_field_energy, phase_field_regularise

    rng = np.random.default_rng(0)
    clean = np.zeros((24, 24))
    clean[6:18, 6:18] = 1.0
    noisy = np.clip(clean + rng.normal(0, 0.25, clean.shape), 0, 1)
    # lam = 0: the start z = logit(p) is already the minimiser; Adam only jitters
    # around it (its normalised steps do not vanish with float32 round-off gradients).
    np.testing.assert_allclose(phase_field_regularise(noisy, 0.0, steps=20),
                               np.clip(noisy, 1e-3, 1 - 1e-3), atol=1e-2)

    def energy(u):
        return float(phase_field_energy(torch.as_tensor(u, dtype=torch.float32)[None, None],
                                        reduction="mean"))

    smooth = phase_field_regularise(noisy, 3.0)
    assert energy(smooth) < 0.5 * energy(noisy)
    assert np.abs(smooth - clean).mean() < np.abs(noisy - clean).mean()
    with pytest.raises(ValueError, match="noisy"):
        phase_field_regularise(noisy * 2, 1.0)
    with pytest.raises(ValueError, match="lam"):
        phase_field_regularise(noisy, -1.0)
