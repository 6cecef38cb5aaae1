"""One battery over the public API: bad input, huge ids, split cells, inputs left unchanged.

Each table below is a list of cases; a new public function joins a property by
one line in the table.
"""

import copy
import importlib
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from fieldseg_core import data, dynamics, fields, flows, losses, metrics, models, predict, segment, viz

# --------------------------------------------------------------------------
# scenes
# --------------------------------------------------------------------------


def scene_2d():
    """Three cells: two touching squares and a disk-like blob."""
    lab = np.zeros((24, 30), dtype=np.int64)
    lab[3:12, 3:11] = 1
    lab[3:12, 11:19] = 2     # touches cell 1
    yy, xx = np.mgrid[:24, :30]
    lab[(yy - 17) ** 2 + (xx - 22) ** 2 < 20] = 3
    return lab


def scene_3d():
    lab = np.zeros((8, 14, 16), dtype=np.int64)
    lab[1:6, 2:8, 2:8] = 1
    lab[1:6, 2:8, 8:13] = 2   # touches cell 1
    lab[2:7, 9:13, 3:9] = 3
    return lab


#: Compact id k -> a huge id, increasing (order matters, e.g. for separate_touching).
BIG = np.array([0, 5, 2**33 + 1, 2**40], dtype=np.int64)


def big(labels):
    return BIG[labels]


def assert_same(a, b, path="out"):
    """Recursive equality for arrays, numbers and containers (floats to 1e-6)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, str):
        assert a == b, path
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, path
        if np.issubdtype(a.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, err_msg=path)
        else:
            np.testing.assert_array_equal(a, b, err_msg=path)


# --------------------------------------------------------------------------
# huge ids: same result as the compact relabelling, in bounded memory
# --------------------------------------------------------------------------

def _same(out):
    return out


def _ids_back(out):
    return big(out)


def _isosurfaces(labels):
    fig = viz.volume_isosurfaces(labels)
    return [(t.name, np.asarray(t.x), np.asarray(t.y), np.asarray(t.z)) for t in fig.data]


def _isosurface_names_back(out):
    return [(f"cell {BIG[int(name.split()[1])]}", x, y, z) for name, x, y, z in out]


_PRED_2D = np.roll(scene_2d(), 1, axis=1)

# (name, ndim, function of the labels, map from the compact result to the big one)
LARGE_ID_CASES = [
    ("poisson_field", 2, fields.poisson_field, _same),
    ("diffusion_field", 2, fields.diffusion_field, _same),
    ("diffusion_field_iterate", 2, lambda l: fields.diffusion_field(l, method="iterate"), _same),
    ("edt_field", 2, fields.edt_field, _same),
    ("edt_field_3d", 3, fields.edt_field, _same),
    ("source_pixels", 2, fields.source_pixels, lambda out: (big(out[0]), out[1])),
    ("separate_touching", 2, fields.separate_touching, _ids_back),
    ("signed_distance_field", 2, fields.signed_distance_field, _same),
    ("centroid_flows", 2, flows.centroid_flows, _same),
    ("heat_flows", 2, flows.heat_flows, _same),
    ("edt_flows", 2, flows.edt_flows, _same),
    ("tsdf_flows", 2, flows.tsdf_flows, _same),
    ("tsdf_flows_3d", 3, flows.tsdf_flows, _same),
    ("flows_from_slices", 3, lambda l: flows.flows_from_slices(l, flows.edt_flows), _same),
    ("stitch_3d", 3, dynamics.stitch_3d, _same),
    ("evaluate", 2, lambda l: metrics.evaluate(l, _PRED_2D), _same),
    ("iou_matrix", 2, lambda l: metrics.iou_matrix(l, _PRED_2D), _same),
    ("watershed_sweep", 2,
     lambda l: segment.watershed_sweep(fields.poisson_field(scene_2d()), l, [0.05], [0.1]), _same),
    ("volume_isosurfaces", 3, _isosurfaces, _isosurface_names_back),
] + [(f"make_target_{r}", 2, lambda l, r=r: data.make_target(l, r), _same)
     for r in models.REPRESENTATIONS]


@pytest.mark.parametrize("name, ndim, fn, back", LARGE_ID_CASES, ids=[c[0] for c in LARGE_ID_CASES])
def test_huge_ids_give_the_compact_result_in_bounded_memory(name, ndim, fn, back):
    compact = scene_2d() if ndim == 2 else scene_3d()
    expected = back(fn(compact.copy()))
    huge = big(compact)
    tracemalloc.start()
    try:
        out = fn(huge)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_same(out, expected)
    # A table sized by the largest id (2**40) would need terabytes.
    assert peak < 64 * 2**20, f"{name} peaked at {peak / 2**20:.0f} MiB"


# --------------------------------------------------------------------------
# bad input: ValueError / TypeError naming the argument
# --------------------------------------------------------------------------

_FIELD = fields.poisson_field(scene_2d())
_FLOWS = flows.heat_flows(scene_2d())
_MASK = scene_2d() > 0
_NET = models.UNet(widths=(4, 8), groups=2)


def _nan_flow_fn(plane):
    return np.full((2,) + plane.shape, np.nan)


# (name, call, exception type, regex the message must match)
BAD_INPUT_CASES = [
    ("watershed eps=0", lambda: segment.watershed_from_field(_FIELD, eps=0), ValueError, "eps"),
    ("watershed eps<0", lambda: segment.watershed_from_field(_FIELD, eps=-0.1), ValueError, "eps"),
    ("watershed signed", lambda: segment.watershed_from_field(_FIELD, signed=1), TypeError, "signed"),
    ("to_instances eps=0", lambda: predict.to_instances(_FIELD[None], "poisson", eps=0),
     ValueError, "eps"),
    ("sweep eps<0", lambda: segment.watershed_sweep(_FIELD, scene_2d(), eps_values=[-1]),
     ValueError, "eps_values"),
    ("sweep eps empty", lambda: segment.watershed_sweep(_FIELD, scene_2d(), eps_values=[]),
     ValueError, "eps_values"),
    ("sweep h=0", lambda: segment.watershed_sweep(_FIELD, scene_2d(), h_values=(0.1, 0)),
     ValueError, "h_values"),
    ("sweep h 2D", lambda: segment.watershed_sweep(_FIELD, scene_2d(), h_values=[[0.1]]),
     ValueError, "h_values"),
    ("masks prob_threshold>1", lambda: dynamics.masks_from_flows(_FLOWS, _MASK, prob_threshold=1.5),
     ValueError, "prob_threshold"),
    ("masks prob_threshold<0", lambda: dynamics.masks_from_flows(_FLOWS, _MASK, prob_threshold=-0.5),
     ValueError, "prob_threshold"),
    ("masks n_iter=0", lambda: dynamics.masks_from_flows(_FLOWS, _MASK, n_iter=0),
     ValueError, "n_iter"),
    ("masks logits", lambda: dynamics.masks_from_flows(_FLOWS, np.where(_MASK, 10.0, -10.0)),
     ValueError, "mask"),
    ("cluster_sinks outside", lambda: dynamics.cluster_sinks(np.array([[1.0, 1.0], [3.0, 40.0]]),
                                                             (24, 30)), ValueError, "positions"),
    ("cluster_sinks negative", lambda: dynamics.cluster_sinks(np.array([[-2.0, 1.0]]), (24, 30)),
     ValueError, "positions"),
    ("follow_flows device name", lambda: dynamics.follow_flows(_FLOWS, _MASK, device="nonsense"),
     ValueError, "device"),
    ("follow_flows device type", lambda: dynamics.follow_flows(_FLOWS, _MASK, device=0),
     TypeError, "device"),
    ("diffusion tol unreachable", lambda: fields.diffusion_field(scene_2d(), method="iterate",
                                                                 tol=1e-300), ValueError, "tol"),
    ("normalize NaN", lambda: fields.normalize_per_cell(np.array([1.0, np.nan]), np.array([1, 1])),
     ValueError, "values"),
    ("normalize zero", lambda: fields.normalize_per_cell(np.array([0.0, 1.0]), np.array([1, 2])),
     ValueError, "values"),
    ("normalize negative", lambda: fields.normalize_per_cell(np.array([-1.0]), np.array([1])),
     ValueError, "values"),
    ("normalize shapes", lambda: fields.normalize_per_cell(np.ones(3), np.ones(2, int)),
     ValueError, "cells"),
    ("normalize 2D", lambda: fields.normalize_per_cell(np.ones((2, 2)), np.ones((2, 2), int)),
     ValueError, "values"),
    ("normalize cells dtype", lambda: fields.normalize_per_cell(np.ones(2), np.ones(2)),
     TypeError, "cells"),
    ("normalize values dtype", lambda: fields.normalize_per_cell(np.array(["a"]), np.ones(1, int)),
     TypeError, "values"),
    ("flows_from_slices NaN", lambda: flows.flows_from_slices(scene_3d(), _nan_flow_fn),
     ValueError, "flow_fn"),
    ("UNet int64", lambda: _NET(torch.zeros(1, 1, 8, 8, dtype=torch.int64)), TypeError, "x"),
    ("UNet float64", lambda: _NET(torch.zeros(1, 1, 8, 8, dtype=torch.float64)), TypeError, "x"),
    ("UNet empty axis", lambda: _NET(torch.zeros(1, 1, 0, 8)), ValueError, "x"),
    ("UNet empty batch", lambda: _NET(torch.zeros(0, 1, 8, 8)), ValueError, "x"),
    ("build_model 3D", lambda: models.build_model("flows", ndim=3), ValueError, "ndim"),
    ("FieldModel 3D", lambda: models.FieldModel(_NET, "poisson", ndim=3), ValueError, "ndim"),
    ("out_channels_for 4D", lambda: models.out_channels_for("flows", ndim=4), ValueError, "ndim"),
    ("ivp_loss devices", lambda: losses.ivp_loss(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4,
                                                 device="meta"), torch.ones(1, 4, 4, dtype=bool)),
     ValueError, "true_flows"),
    ("viz max_cells", lambda: viz.volume_isosurfaces(scene_3d(), max_cells=0), ValueError, "max_cells"),
]


@pytest.mark.parametrize("name, call, exc, match", BAD_INPUT_CASES,
                         ids=[c[0] for c in BAD_INPUT_CASES])
def test_bad_input_raises_naming_the_argument(name, call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_scalar_grid_values_are_a_grid_of_one():
    rows = segment.watershed_sweep(_FIELD, scene_2d(), eps_values=0.05, h_values=0.1)
    assert rows == segment.watershed_sweep(_FIELD, scene_2d(), eps_values=[0.05], h_values=[0.1])
    assert rows[0]["ap50"] == 1.0


def test_sdf_level_may_be_negative_only_when_signed():
    phi = fields.signed_distance_field(scene_2d(), truncation=10.0)
    out = segment.watershed_from_field(phi, eps=-0.5, h=1.0, mask=phi > -0.5, signed=True)
    np.testing.assert_array_equal(out > 0, phi > -0.5)
    assert predict.to_instances(phi[None], "sdf", level=-0.5).max() == 3


def test_ivp_loss_casts_the_target_to_the_prediction_dtype():
    rng = torch.Generator().manual_seed(0)
    pred = torch.randn(1, 2, 6, 7, generator=rng, dtype=torch.float64)
    true = torch.randn(1, 2, 6, 7, generator=rng)
    mask = torch.ones(1, 6, 7, dtype=torch.bool)
    mixed = losses.ivp_loss(pred, true, mask)
    assert mixed.dtype == torch.float64
    torch.testing.assert_close(mixed, losses.ivp_loss(pred, true.double(), mask))


# --------------------------------------------------------------------------
# torch tensors that require grad go to the numpy post-processing
# --------------------------------------------------------------------------

def _grad_tensor(array):
    return torch.tensor(np.asarray(array, dtype=np.float32), requires_grad=True)


# (name, call with numpy inputs, call with tensors that require grad)
TENSOR_CASES = [
    ("watershed_from_field", lambda: segment.watershed_from_field(_FIELD),
     lambda: segment.watershed_from_field(_grad_tensor(_FIELD))),
    ("field_markers", lambda: segment.field_markers(_FIELD),
     lambda: segment.field_markers(_grad_tensor(_FIELD))),
    ("follow_flows", lambda: dynamics.follow_flows(_FLOWS, _MASK, n_iter=5, device="cpu"),
     lambda: dynamics.follow_flows(_grad_tensor(_FLOWS), torch.from_numpy(_MASK), n_iter=5,
                                   device="cpu")),
    ("masks_from_flows", lambda: dynamics.masks_from_flows(_FLOWS, _MASK.astype(np.float32),
                                                           device="cpu"),
     lambda: dynamics.masks_from_flows(_grad_tensor(_FLOWS), _grad_tensor(_MASK), device="cpu")),
]


@pytest.mark.parametrize("name, numpy_call, tensor_call", TENSOR_CASES,
                         ids=[c[0] for c in TENSOR_CASES])
def test_tensors_that_require_grad_are_accepted(name, numpy_call, tensor_call):
    assert_same(tensor_call(), numpy_call())


# --------------------------------------------------------------------------
# a cell id in two disconnected pieces
# --------------------------------------------------------------------------

def split_scene():
    lab = np.zeros((20, 34), dtype=np.int64)
    lab[2:12, 2:12] = 1
    lab[4:10, 24:30] = 1     # a second, smaller piece of cell 1, far away
    lab[12:18, 12:22] = 2
    return lab


SPLIT_FIELDS = [
    ("poisson", fields.poisson_field),
    ("diffusion", fields.diffusion_field),
    ("diffusion_iterate", lambda l: fields.diffusion_field(l, method="iterate", tol=1e-6)),
    ("edt", fields.edt_field),
]


@pytest.mark.parametrize("name, fn", SPLIT_FIELDS, ids=[c[0] for c in SPLIT_FIELDS])
def test_split_cell_field_is_positive_in_every_piece(name, fn):
    lab = split_scene()
    u = fn(lab)
    assert np.all(u[lab > 0] > 0)
    assert np.all(u[lab == 0] == 0)
    assert u[lab == 1].max() == 1.0 and u[lab == 2].max() == 1.0


def test_split_cell_diffusion_is_that_of_each_piece_alone():
    lab = split_scene()
    u = fields.diffusion_field(lab)
    for box in (np.s_[2:12, 2:12], np.s_[4:10, 24:30]):
        alone = np.zeros_like(lab)
        alone[box] = 1
        np.testing.assert_allclose(u[box], fields.diffusion_field(alone)[box], atol=1e-6)


def test_split_cell_heat_flows_move_every_piece():
    lab = split_scene()
    f = flows.heat_flows(lab)
    small_piece = np.zeros(lab.shape, bool)
    small_piece[4:10, 24:30] = True
    moving = np.linalg.norm(f[:, small_piece], axis=0) > 0.5
    assert moving.mean() > 0.9


# --------------------------------------------------------------------------
# inputs are never modified
# --------------------------------------------------------------------------

def _t(shape=(1, 1, 12, 13), seed=0, positive=False):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    return x.abs() if positive else x


def _sig():
    return models.LearnableSigmoid()


# (name, function building the inputs, call on them)
UNCHANGED_CASES = [
    ("poisson_field", lambda: (scene_2d(),), fields.poisson_field),
    ("diffusion_field", lambda: (scene_2d(),), fields.diffusion_field),
    ("edt_field", lambda: (scene_2d(),), fields.edt_field),
    ("source_pixels", lambda: (scene_2d(),), fields.source_pixels),
    ("normalize_per_cell", lambda: (np.array([1.0, 2.0, 4.0]), np.array([3, 3, 9])),
     fields.normalize_per_cell),
    ("separate_touching", lambda: (scene_2d(),), fields.separate_touching),
    ("signed_distance_field", lambda: (scene_2d(),), fields.signed_distance_field),
    ("centroid_flows", lambda: (scene_2d(),), flows.centroid_flows),
    ("heat_flows", lambda: (scene_2d(),), flows.heat_flows),
    ("edt_flows", lambda: (scene_2d(),), flows.edt_flows),
    ("tsdf_flows", lambda: (scene_2d(),), flows.tsdf_flows),
    ("flows_from_slices", lambda: (scene_3d(), flows.centroid_flows), flows.flows_from_slices),
    ("euler_integrate", lambda: (torch.from_numpy(_FLOWS)[None], torch.rand(1, 5, 2) * 10, 3),
     dynamics.euler_integrate),
    ("follow_flows", lambda: (_FLOWS.copy(), _MASK.copy()),
     lambda f, m: dynamics.follow_flows(f, m, n_iter=3, device="cpu")),
    ("cluster_dbscan", lambda: (np.random.default_rng(0).uniform(0, 9, (40, 2)),),
     lambda p: dynamics.cluster_dbscan(p, 1.5, 3)),
    ("cluster_sinks", lambda: (np.random.default_rng(0).uniform(0, 9, (40, 2)), (10, 10)),
     dynamics.cluster_sinks),
    ("masks_from_flows", lambda: (_FLOWS.copy(), _MASK.astype(np.float32)),
     lambda f, m: dynamics.masks_from_flows(f, m, device="cpu")),
    ("stitch_3d", lambda: (scene_3d(),), dynamics.stitch_3d),
    ("field_markers", lambda: (_FIELD.copy(),), segment.field_markers),
    ("watershed_from_field", lambda: (_FIELD.copy(), 0.05, 0.1, _MASK.copy()),
     segment.watershed_from_field),
    ("watershed_sweep", lambda: (_FIELD.copy(), scene_2d(), [0.05, 0.1], [0.1]),
     segment.watershed_sweep),
    ("evaluate", lambda: (scene_2d(), _PRED_2D.copy()), metrics.evaluate),
    ("matching", lambda: (scene_2d(), _PRED_2D.copy()), metrics.matching),
    ("make_target", lambda: (scene_2d(), "flows"), data.make_target),
    ("augment", lambda: (np.random.default_rng(0).random((1, 8, 9)).astype(np.float32),
                         data.make_target(scene_2d()[:8, :9], "flows"), "flows"),
     lambda i, t, r: data.augment(i, t, r, flip_axes=(0,), rot90=1)),
    ("predict_tiled", lambda: (np.random.default_rng(0).random((30, 40)),),
     lambda im: data.predict_tiled(lambda x: 2 * x, im, tile=16, overlap=4)),
    ("to_instances", lambda: (predict.ideal_output(data.make_target(scene_2d(), "flows"), "flows"),
                              "flows"), predict.to_instances),
    ("ideal_output", lambda: (data.make_target(scene_2d(), "flows"), "flows"), predict.ideal_output),
    ("field_l1_loss", lambda: (_t(), _t(seed=1)), losses.field_l1_loss),
    ("flow_loss", lambda: (_t((1, 3, 12, 13)), _t((1, 2, 12, 13), 1), _t((1, 1, 12, 13), 2) > 0),
     losses.flow_loss),
    ("unified_sdf_loss", lambda: (_t(), _t(seed=1), _sig()), losses.unified_sdf_loss),
    ("ivp_loss", lambda: (_t((1, 2, 12, 13)), _t((1, 2, 12, 13), 1), _t((1, 12, 13), 2) > 0),
     lambda p, t, m: losses.ivp_loss(p, t, m, n_iter=3)),
    ("tversky_loss", lambda: (_t(), _t(seed=1) > 0), losses.tversky_loss),
    ("phase_field_energy", lambda: (torch.rand(1, 1, 12, 13),), losses.phase_field_energy),
    ("soft_boundary", lambda: (_t(), _sig()), losses.soft_boundary),
    ("modified_hausdorff_terms", lambda: (_t(), _t(seed=1), _sig()), losses.modified_hausdorff_terms),
    ("sdf_cross_entropy", lambda: (_t(), (_t(seed=1) > 0).float(), _sig()), losses.sdf_cross_entropy),
    ("reaction_diffusion_residual", lambda: (torch.rand(1, 1, 12, 13),),
     losses.reaction_diffusion_residual),
    ("phase_field_regularise", lambda: (np.random.default_rng(0).random((10, 11)), 0.1),
     lambda p, lam: losses.phase_field_regularise(p, lam, steps=3)),
    ("seg_score", lambda: (scene_2d(), _PRED_2D.copy()), metrics.seg_score),
    ("average_precision", lambda: (scene_2d(), _PRED_2D.copy()), metrics.average_precision),
    ("spatial_transform", lambda: (scene_2d(),), lambda a: data.spatial_transform(a, (1,), 3)),
    ("random_augment", lambda: (np.random.default_rng(0).random((1, 8, 9)).astype(np.float32),
                                data.make_target(scene_2d()[:8, :9], "flows"), "flows"),
     lambda i, t, r: data.random_augment(i, t, r, np.random.default_rng(1))),
    ("label_rgb", lambda: (scene_2d(),), viz.label_rgb),
    ("field_surface", lambda: (_FIELD.copy(), scene_2d()), viz.field_surface),
    ("volume_slices", lambda: (fields.edt_field(scene_3d()), scene_3d()), viz.volume_slices),
    ("volume_isosurfaces", lambda: (scene_3d(),), viz.volume_isosurfaces),
    ("otsu_watershed", lambda: (_FIELD.astype(np.float64),), segment.otsu_watershed),
]


def _snapshot(args):
    out = []
    for a in args:
        if isinstance(a, torch.Tensor):
            out.append(a.detach().clone())
        elif isinstance(a, models.LearnableSigmoid):
            out.append(copy.deepcopy(a.state_dict()))
        elif isinstance(a, np.ndarray):
            out.append(a.copy())
        else:
            out.append(copy.deepcopy(a))
    return out


@pytest.mark.parametrize("name, make, call", UNCHANGED_CASES, ids=[c[0] for c in UNCHANGED_CASES])
def test_inputs_are_unchanged(name, make, call):
    args = make()
    before = _snapshot(args)
    call(*args)
    for i, (a, b) in enumerate(zip(_snapshot(args), before)):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), f"argument {i} of {name} was modified"
        elif isinstance(a, dict):
            for k in a:
                assert torch.equal(a[k], b[k]), f"argument {i} of {name} was modified"
        else:
            assert_same(a, b, f"argument {i} of {name}")


# --------------------------------------------------------------------------
# docstrings: no escape sequence turned into a control character
# --------------------------------------------------------------------------

MODULES = sorted(p.stem for p in Path(__file__).resolve().parents[1].joinpath("fieldseg_core").glob("*.py")
                 if p.stem not in ("__init__", "__main__"))


@pytest.mark.parametrize("module", MODULES)
def test_docstrings_hold_no_control_characters(module):
    # A "\frac" in a non-raw docstring is a form feed and "rac" in the rendered page.
    mod = importlib.import_module(f"fieldseg_core.{module}")
    docs = {module: mod.__doc__}
    for name, obj in vars(mod).items():
        if getattr(obj, "__module__", None) == mod.__name__:
            docs[name] = getattr(obj, "__doc__", None)
            for attr, member in vars(obj).items() if isinstance(obj, type) else ():
                docs[f"{name}.{attr}"] = getattr(member, "__doc__", None)
    bad = [name for name, doc in docs.items()
           if isinstance(doc, str) and re.search(r"[\x00-\x08\x0b-\x1f]", doc)]
    assert not bad


def test_docstrings_name_files_that_exist():
    # e.g. viz once named a renderer file that did not exist
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    named = set()
    for path in (root / "fieldseg_core").glob("*.py"):
        named |= set(re.findall(r"``((?:_ext|benchmarks|book|tests)/[\w./-]+\.\w+)``", path.read_text()))
    missing = sorted(p for p in named if not (root / p).exists())
    assert not missing


# --------------------------------------------------------------------------
# one home for each helper: the copies agree because there is one
# --------------------------------------------------------------------------

@pytest.mark.parametrize("device, exc", [("nonsense", ValueError), (0, TypeError),
                                         ([], TypeError)])
def test_dynamics_and_train_reject_a_device_alike(device, exc):
    from fieldseg_core.data import SyntheticCells
    from fieldseg_core.train import train

    with pytest.raises(exc, match="device"):
        dynamics.follow_flows(_FLOWS, _MASK, device=device)
    ds = SyntheticCells(2, "edt", shape=(16, 16), n_cells_range=(1, 1), radius_range=(3, 4))
    with pytest.raises(exc, match="device"):
        train(models.build_model("edt", widths=(4, 8), groups=2), ds, epochs=1, device=device,
              progress=False)


def test_representations_have_one_list():
    for r in models.REPRESENTATIONS:
        assert data.target_channels(r, 2) == models.out_channels_for(r, 2)
        assert data.make_target(scene_2d(), r).shape[0] == models.out_channels_for(r, 2)
    for bad in ("Poisson", "flow", None):
        for call in (lambda: models.build_model(bad), lambda: data.make_target(scene_2d(), bad),
                     lambda: predict.to_instances(_FIELD[None], bad)):
            with pytest.raises(ValueError, match="representation"):
                call()


def test_flow_scale_is_the_flow_loss_default():
    import inspect

    default = inspect.signature(losses.flow_loss).parameters["flow_scale"].default
    assert predict.FLOW_SCALE == default == losses.FLOW_SCALE
    # an ideal output made with it round-trips through to_instances' default
    out = predict.ideal_output(data.make_target(scene_2d(), "flows"), "flows")
    np.testing.assert_allclose(out[:2] / predict.FLOW_SCALE, data.make_target(scene_2d(), "flows")[:2],
                               atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_evaluate_iou_and_dice_are_the_foreground_scores(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 4, (12, 13)) * (rng.random((12, 13)) < 0.6 * (seed > 0))
    b = np.roll(a, seed, axis=0)
    e = metrics.evaluate(a, b)
    assert e["iou"] == metrics.foreground_iou(a, b)
    assert e["dice"] == metrics.foreground_dice(a, b)


def test_sdf_losses_use_the_learnable_sigmoid_tanh():
    class Steeper(models.LearnableSigmoid):
        def tanh(self, z):
            return super().tanh(2 * z)

    phi = torch.linspace(-2, 2, 16).reshape(1, 1, 4, 4)
    s, t = models.LearnableSigmoid(), Steeper()
    expected = (t.tanh(phi.flip(-1)) - t.tanh(phi)).square().mean()
    assert torch.isclose(losses.tanh_lsq_loss(phi.flip(-1), phi, t, reduction="mean"), expected)
    assert not torch.isclose(losses.tanh_lsq_loss(phi.flip(-1), phi, s, reduction="mean"), expected)
