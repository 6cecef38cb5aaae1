"""Helpers moved out of the book's notebooks, each against hand-computed values.

synthetic.imitate_prediction / imitate_flow_prediction / touching_pairs /
touching_count, losses.physics_objective, viz.line_profile,
studies.per_slice_masks / compare_3d.
"""

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from fieldseg_core import losses, studies, synthetic, viz


# --- imitate_prediction -----------------------------------------------------

def _square(shape=(32, 32)):
    lab = np.zeros(shape, dtype=np.int32)
    lab[8:24, 8:24] = 1
    return lab


def test_imitate_prediction_noise_free_is_the_blurred_field():
    lab = _square()
    u = np.where(lab > 0, 1.0, 0.0)
    v = synthetic.imitate_prediction(u, lab, noise=0.0, background=0.0, blur=1.5)
    np.testing.assert_allclose(v, ndi.gaussian_filter(u, 1.5))
    # blur 0 and no noise: the identity
    np.testing.assert_array_equal(synthetic.imitate_prediction(u, lab, noise=0, background=0, blur=0), u)


def test_imitate_prediction_noise_amplitudes_per_region():
    # On a constant field far from 0 (no clipping, blur of a constant is the constant),
    # v - c = amplitude * n with n of unit std over the image: dividing each region by
    # its amplitude recovers n exactly, whose std is 1.
    lab = _square()
    c = 5.0
    v = synthetic.imitate_prediction(np.full(lab.shape, c), lab, noise=0.2, background=0.05, seed=4)
    n = np.where(lab > 0, (v - c) / 0.2, (v - c) / 0.05)
    assert n.std() == pytest.approx(1.0, abs=1e-12)
    assert abs(n.mean()) < 0.5
    # correlated: neighbouring values are similar (lag-1 autocorrelation of a sigma-2 blur ~ 0.88)
    assert np.corrcoef(n[:, :-1].ravel(), n[:, 1:].ravel())[0, 1] > 0.8


def test_imitate_prediction_clips_at_zero_is_seeded_and_3d():
    lab = _square()
    u = np.zeros(lab.shape)
    v = synthetic.imitate_prediction(u, lab, noise=0.5, seed=1)
    assert v.min() == 0.0 and v.max() > 0
    np.testing.assert_array_equal(v, synthetic.imitate_prediction(u, lab, noise=0.5, seed=1))
    assert not np.array_equal(v, synthetic.imitate_prediction(u, lab, noise=0.5, seed=2))
    vol = np.zeros((6, 10, 10), int)
    vol[1:5, 2:8, 2:8] = 1
    assert synthetic.imitate_prediction(vol.astype(float), vol).shape == vol.shape


def test_imitate_prediction_rejects_bad_input_and_keeps_input():
    lab = _square()
    u = np.where(lab > 0, 1.0, 0.0)
    before = u.copy()
    synthetic.imitate_prediction(u, lab)
    np.testing.assert_array_equal(u, before)
    with pytest.raises(ValueError, match="labels"):
        synthetic.imitate_prediction(u, lab[:10])
    with pytest.raises(ValueError, match="noise"):
        synthetic.imitate_prediction(u, lab, noise=-1)
    with pytest.raises(TypeError, match="field"):
        synthetic.imitate_prediction(u > 0, lab)


# --- imitate_flow_prediction ------------------------------------------------

def test_imitate_flow_prediction_masks_and_scales_linearly():
    lab = _square()
    F = np.stack([np.ones(lab.shape), -np.ones(lab.shape)])
    a = synthetic.imitate_flow_prediction(F, lab, noise=0.3, seed=5)
    b = synthetic.imitate_flow_prediction(F, lab, noise=0.6, seed=5)
    assert a.dtype == np.float32 and a.shape == F.shape
    assert np.all(a[:, lab == 0] == 0)
    inside = lab > 0
    np.testing.assert_allclose((b - F)[:, inside], 2 * (a - F)[:, inside], atol=1e-5)
    np.testing.assert_array_equal(synthetic.imitate_flow_prediction(F, lab, noise=0.0)[:, inside], F[:, inside])
    # components get independent noise
    assert not np.allclose((a - F)[0], (a - F)[1] * -1)
    with pytest.raises(ValueError, match="flows"):
        synthetic.imitate_flow_prediction(F[0], lab)


# --- touching pairs and counts ----------------------------------------------

def test_touching_pairs_and_count_by_hand():
    lab = np.array([[1, 1, 2, 0, 4],
                    [3, 3, 2, 0, 4],
                    [3, 5, 0, 0, 0]])
    # faces: 1|2, 3|2 (rows 0, 1 along columns); 1/3, 1/3 (columns 0, 1 between rows 0, 1);
    # 3|5 (row 2), 3/5 (column 1 between rows 1, 2): 6 faces, pairs (1,2), (1,3), (2,3), (3,5)
    assert synthetic.touching_count(lab) == 6
    assert synthetic.touching_pairs(lab).tolist() == [[1, 2], [1, 3], [2, 3], [3, 5]]
    diagonal = np.array([[1, 0], [0, 2]])
    assert synthetic.touching_count(diagonal) == 0
    assert synthetic.touching_pairs(diagonal).shape == (0, 2)


def test_touching_in_3d_counts_faces():
    vol = np.zeros((4, 3, 3), int)
    vol[:2] = 1
    vol[2:] = 2          # one 3x3 interface between z = 1 and z = 2
    assert synthetic.touching_count(vol) == 9
    assert synthetic.touching_pairs(vol).tolist() == [[1, 2]]


# --- physics_objective ------------------------------------------------------

class _FlowModel:
    def split(self, output):
        return {"flows": output[:, :2], "logits": output[:, 2:]}


def _data_term(output, target, model):
    return (output[:, :2] - target).abs().mean()


def test_physics_objective_by_hand_on_a_constant_map():
    # p = sigma(log 3) = 3/4 everywhere: the Laplacian is 0, so the residual is
    # f(3/4)^2 = (3/4 * 1/4 * 1/4)^2, and the energy density is W(3/4)/eps
    # = (3/4)^2 (1/4)^2 / eps (no gradient).
    output = torch.zeros(2, 3, 8, 8, dtype=torch.float64)
    output[:, 2] = np.log(3.0)
    target = torch.full((2, 2, 8, 8), 0.5, dtype=torch.float64)
    data = 0.5
    f = 0.75 * 0.25 * 0.25
    w = 0.75**2 * 0.25**2
    model = _FlowModel()
    off = losses.physics_objective(_data_term, lambda_rd=0.0, lambda_pf=0.0)
    assert float(off(output, target, model)) == pytest.approx(data)
    rd = losses.physics_objective(_data_term, lambda_rd=10.0, lambda_pf=0.0, D=0.7)
    assert float(rd(output, target, model)) == pytest.approx(data + 10 * f**2)
    pf = losses.physics_objective(_data_term, lambda_rd=0.0, lambda_pf=3.0, epsilon=2.0)
    assert float(pf(output, target, model)) == pytest.approx(data + 3 * w / 2.0)
    both = losses.physics_objective(_data_term, lambda_rd=10.0, lambda_pf=3.0, epsilon=2.0, D=1.0)
    assert float(both(output, target, model)) == pytest.approx(data + 10 * f**2 + 3 * w / 2.0)


def test_physics_objective_matches_the_package_penalties_and_backpropagates():
    torch.manual_seed(0)
    output = torch.randn(1, 3, 10, 10, requires_grad=True)
    model = _FlowModel()
    loss = losses.physics_objective(lambda o, t, m: o.sum() * 0, lambda_rd=2.0, lambda_pf=0.5, D=0.3, epsilon=1.5)
    value = loss(output, None, model)
    p = torch.sigmoid(output[:, 2:])
    expected = (2.0 * losses.reaction_diffusion_residual(p, D=0.3)
                + 0.5 * losses.phase_field_energy(p, epsilon=1.5, reduction="mean"))
    assert float(value.detach()) == pytest.approx(float(expected.detach()))
    value.backward()
    assert output.grad[:, 2].abs().sum() > 0 and output.grad[:, :2].abs().sum() == 0


def test_physics_objective_validates():
    with pytest.raises(TypeError, match="data_term"):
        losses.physics_objective(None)
    with pytest.raises(ValueError, match="lambda_pf"):
        losses.physics_objective(_data_term, lambda_pf=-1.0)
    with pytest.raises(ValueError, match="threshold"):
        losses.physics_objective(_data_term, threshold=1.0)


# --- line_profile -----------------------------------------------------------

def test_line_profile_is_exact_on_a_linear_field():
    rows, cols = np.mgrid[:20, :30]
    field = 2.0 * rows - 0.5 * cols + 1
    d, v = viz.line_profile(field, (3.0, 4.0), (15.0, 20.0), n=5)
    np.testing.assert_allclose(d, [0, 5, 10, 15, 20])           # |(12, 16)| = 20
    r = np.linspace(3, 15, 5)
    c = np.linspace(4, 20, 5)
    np.testing.assert_allclose(v, 2 * r - 0.5 * c + 1)
    vol = np.arange(4 * 5 * 6, dtype=float).reshape(4, 5, 6)    # linear: 30 z + 6 y + x
    d3, v3 = viz.line_profile(vol, (0, 0, 0), (3, 4, 5), n=2)
    np.testing.assert_allclose(v3, [0, 3 * 30 + 4 * 6 + 5])
    with pytest.raises(ValueError, match="start"):
        viz.line_profile(field, (1, 2, 3), (4, 5))


# --- per-slice masks and the 3D comparison ----------------------------------

def test_per_slice_masks_and_compare_3d_on_stacked_boxes():
    vol = np.zeros((12, 10, 10), int)
    vol[1:7, 2:8, 2:8] = 1     # 6 slices
    vol[7:11, 2:8, 2:8] = 2    # 4 slices, same footprint, directly below
    slices = studies.per_slice_masks(vol, device="cpu")
    np.testing.assert_array_equal(slices > 0, vol > 0)
    assert all(slices[z].max() == (1 if vol[z].any() else 0) for z in range(12))
    _, preds, rows = studies.compare_3d(vol, thresholds=(0.5, 0.25), device="cpu")
    by = {r["method"]: r for r in rows}
    # stitching links identical footprints: one object of 10 slices, IoU 6/10 with cell 1,
    # so TP 1, FN 1, FP 0 and AP50 = 1/2, at both thresholds
    for thr in ("stitch 0.5", "stitch 0.25"):
        assert (by[thr]["objects"], by[thr]["tp"], by[thr]["fp"], by[thr]["fn"]) == (1, 1, 0, 1)
        assert by[thr]["ap50"] == pytest.approx(0.5)
    for name in ("3D flows from slices", "3D heat flows"):
        assert by[name]["ap50"] == 1.0 and by[name]["objects"] == 2
    with pytest.raises(ValueError, match="labels_3d"):
        studies.per_slice_masks(vol[0])


# --- field_surface_menu -----------------------------------------------------

def test_field_surface_menu_one_view_and_a_button_per_field():
    lab = np.zeros((20, 20), int)
    lab[4:16, 4:16] = 1
    a, b, c = lab * 1.0, lab * 0.5, lab * 0.25
    fig = viz.field_surface_menu({"A": a, "B": b, "C": c}, lab, height=400)
    assert [t.visible for t in fig.data] == [True, False, False]
    buttons = fig.layout.updatemenus[0].buttons
    assert [btn.label for btn in buttons] == ["A", "B", "C"]
    assert list(buttons[1].args[0]["visible"]) == [False, True, False]
    np.testing.assert_array_equal(np.asarray(fig.data[1].z), b)     # 20 px: no subsampling
    assert fig.layout.height == 400 and fig.layout.modebar.orientation == "v"
    with pytest.raises(ValueError, match="same shape"):
        viz.field_surface_menu({"A": a, "B": a[:10]})


def test_book_renderer_does_not_autoplay_sliders():
    # plotly's HTML plays a figure's frames on load by default, so a slider opened on
    # its last frame; the book's renderer must leave it on the first.
    frames = [np.full((4, 4), float(k)) for k in range(3)]
    fig = viz.frames_slider(frames, values=[0, 1, 2])
    html = viz._OfflineHtmlRenderer().to_mimebundle(fig.to_dict())["text/html"]
    assert "Plotly.addFrames" in html and "Plotly.animate" not in html
    assert fig.layout.sliders[0].active == 0
