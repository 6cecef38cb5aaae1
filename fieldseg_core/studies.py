"""Studies of the flow-field pipeline on synthetic scenes, returned as tidy tables.

Each study builds ideal flows from synthetic ground truth (no network is
involved), follows them with :func:`fieldseg_core.dynamics.follow_flows`,
clusters the end points, and scores the result against the ground truth. The
result is a list of dicts, one per row, ready for ``pandas.DataFrame(rows)``
or :mod:`csv`. The studies re-run the synthetic experiments of the
Cellpose-SAM course report [1]_:

- :func:`synthetic_benchmark` -- Table 4, scenarios Ex 1-7;
- :func:`epsilon_stress_test` -- Fig. 5, DBSCAN ``eps`` at ``N = 20``
  iterations on 20 high-overlap cells;
- :func:`epsilon_iterations_grid` -- Fig. 6, ``eps`` x iterations;
- :func:`flow_type_comparison` -- centroid, heat, EDT and truncated-SDF
  flows [2]_ side by side, with the iterations they need to settle.

``python -m fieldseg_core.reproduce`` turns them into figures and CSV files.

Definitions
-----------
Matching
    True and predicted cells are matched one to one at IoU >= 0.5 with
    :func:`fieldseg_core.metrics.matching`, giving TP, FP and FN.
``ap50``
    ``TP / (TP + FP + FN)`` at IoU 0.5 ([1]_, Eq. 2).
``mean_iou``
    Mean over the *true* cells of the IoU with their matched prediction,
    counting 0 for a cell without a match: ``sum(matched IoU) / n_true``.
    Missed and merged cells therefore pull it down, as in the report, where
    "mean IoU" drops to 0.786 for 4 false negatives out of 20 cells (Fig. 5
    text) -- a drop that is consistent with about 0.98 on the 16 matched
    cells and 0 on the 4 missed ones, but not with an average over matched
    pairs only.
``mean_matched_iou``
    Mean IoU over matched pairs only (the panoptic SQ), for reference.
Clustering
    As in Algorithm 1 of [1]_, end points are rounded to the pixel grid and
    clustered with DBSCAN (:func:`fieldseg_core.dynamics.cluster_dbscan`);
    DBSCAN noise becomes background. No small objects are removed, so every
    fragment counts as a false positive. ``min_samples`` defaults to 5, the
    scikit-learn default, since the report does not give it.

References
----------
.. [1] Course report on Cellpose-SAM with a from-scratch flow-field
   re-implementation , Sec. 4.1, Algorithm 1, Table 4,
   Figs. 5-6.
.. [2] "Vector fields for instance segmentation" (Peters), Sec. 2-6.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import dynamics, flows, metrics, synthetic
from ._validate import validate_labels, validate_mask, validate_number

__all__ = [
    "FLOWS",
    "TABLE4_SCENARIOS",
    "PAPER_FIG5",
    "score",
    "flow_trajectories",
    "labels_from_points",
    "synthetic_benchmark",
    "epsilon_stress_test",
    "epsilon_iterations_grid",
    "flow_type_comparison",
]

#: Flow constructions by name (all called with their default parameters).
FLOWS = {
    "centroid": flows.centroid_flows,
    "heat": flows.heat_flows,
    "edt": flows.edt_flows,
    "tsdf": flows.tsdf_flows,
}

#: The seven scenarios of Le & Nguyen, Table 4.
TABLE4_SCENARIOS = ("ex1", "ex2", "ex3", "ex4", "ex5", "ex6", "ex7")

#: Numbers stated in the text under Fig. 5 of Le & Nguyen (20 cells, N = 20),
#: by ``eps``; only the counts the report gives are listed.
PAPER_FIG5 = {
    0.5: {"tp": None, "fp": 6, "fn": None, "mean_iou": 0.747},
    1.5: {"tp": 18, "fp": None, "fn": None, "mean_iou": 0.873},
    5.0: {"tp": None, "fp": None, "fn": 4, "mean_iou": 0.786},
}

_CLUSTERS = ("dbscan", "sinks")


# --------------------------------------------------------------------------
# validation helpers (private)
# --------------------------------------------------------------------------

def _validate_choice(value, name, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def _validate_sequence(values, name):
    """A non-empty list from a sequence (a bare string or scalar is refused)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a sequence, got {type(values).__name__} {values!r}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


def _validate_scenarios(scenarios, name="scenarios"):
    return [_validate_choice(s, f"{name} entry", tuple(synthetic.SCENARIOS))
            for s in _validate_sequence(scenarios, name)]


def _validate_seeds(seeds):
    return [validate_number(s, "seeds entry", low=0, integer=True)
            for s in _validate_sequence(seeds, "seeds")]


def _validate_eps_values(eps_values):
    return [validate_number(e, "eps_values entry", low=0, low_inclusive=False)
            for e in _validate_sequence(eps_values, "eps_values")]


def _validate_iterations(iterations):
    values = [validate_number(n, "iterations entry", low=0, integer=True)
              for n in _validate_sequence(iterations, "iterations")]
    return sorted(set(values))


def _validate_dynamics(n_iter, step, eps, min_samples):
    return (validate_number(n_iter, "n_iter", low=0, integer=True),
            validate_number(step, "step", low=0, low_inclusive=False),
            validate_number(eps, "eps", low=0, low_inclusive=False),
            validate_number(min_samples, "min_samples", low=1, integer=True))


def _validate_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _progress(iterable, enabled, desc, total=None):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


# --------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------

def score(y_true, y_pred):
    """Counts and scores of one prediction, as used in every study row.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Ground-truth and predicted label images of the same shape.

    Returns
    -------
    row : dict
        ``n_true``, ``n_pred``, ``tp``, ``fp``, ``fn`` (ints) and ``ap50``,
        ``mean_iou``, ``mean_matched_iou`` (floats); see the module notes.

    Notes
    -----
    One call of :func:`fieldseg_core.metrics.matching` at IoU 0.5. With no
    true cell at all, ``mean_iou`` follows ``matching``'s convention for
    empty images (1.0 if the prediction is empty too, else 0.0).

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 4.1.2 (IoU, AP50) and 4.1.4 (mean IoU).

    Examples
    --------
    >>> import numpy as np
    >>> y_true = np.array([[1, 1, 0, 2, 2, 0, 3, 3]])
    >>> y_pred = np.array([[5, 5, 0, 6, 0, 0, 0, 0]])   # 1 exact, 2 halved, 3 missed
    >>> s = score(y_true, y_pred)
    >>> s["tp"], s["fp"], s["fn"], s["mean_iou"], s["mean_matched_iou"]
    (2, 0, 1, 0.5, 0.75)
    """
    m = metrics.matching(y_true, y_pred, threshold=0.5)
    if m["n_true"] > 0:
        mean_iou = float(np.sum(m["matched_iou"])) / m["n_true"]
    else:
        mean_iou = 1.0 if m["n_pred"] == 0 else 0.0
    return {"n_true": m["n_true"], "n_pred": m["n_pred"], "tp": m["tp"], "fp": m["fp"],
            "fn": m["fn"], "ap50": m["average_precision"], "mean_iou": mean_iou,
            "mean_matched_iou": m["mean_matched_iou"]}


def flow_trajectories(labels, flow="heat", n_iter=200, step=1.0, device=None):
    """Ideal flows of a label image, followed from every cell pixel.

    Parameters
    ----------
    labels : (M, N) or (P, M, N) array of int
        Ground-truth label image (0 = background).
    flow : {"centroid", "heat", "edt", "tsdf"}, optional
        Flow construction from :data:`FLOWS`.
    n_iter : int, optional
        Euler steps.
    step : float, optional
        Euler step size (> 0).
    device : None, str or torch.device, optional
        Passed to :func:`fieldseg_core.dynamics.follow_flows`.

    Returns
    -------
    mask : ndarray of bool
        The foreground ``labels > 0``.
    trajectories : (n_iter + 1, n_fg, ndim) ndarray of float32
        Positions of the foreground pixels (in ``np.nonzero(mask)`` order)
        after ``0, 1, ..., n_iter`` steps.

    Notes
    -----
    Integrating once and keeping every step lets a study cluster the
    positions at many iteration counts without re-integrating.

    Examples
    --------
    >>> import numpy as np
    >>> labels = np.zeros((9, 9), dtype=int)
    >>> labels[1:8, 1:8] = 1
    >>> mask, traj = flow_trajectories(labels, "centroid", n_iter=10, device="cpu")
    >>> traj.shape
    (11, 49, 2)
    >>> bool(np.abs(traj[-1] - 4.0).max() < 0.5)    # every pixel ends near the centre
    True
    """
    labels = validate_labels(labels)
    flow = _validate_choice(flow, "flow", tuple(FLOWS))
    n_iter = validate_number(n_iter, "n_iter", low=0, integer=True)
    step = validate_number(step, "step", low=0, low_inclusive=False)
    mask = labels > 0
    field = FLOWS[flow](labels)
    _, traj = dynamics.follow_flows(field, mask, n_iter=n_iter, step=step, device=device,
                                    return_trajectories=True)
    return mask, traj


def labels_from_points(points, mask, cluster="dbscan", eps=1.5, min_samples=5):
    """Label image from clustered end points of the foreground pixels.

    Parameters
    ----------
    points : (n_fg, ndim) array of float
        One position per foreground pixel, in ``np.nonzero(mask)`` order.
    mask : array of bool
        The foreground; ``mask.sum()`` must equal ``n_fg``.
    cluster : {"dbscan", "sinks"}, optional
        :func:`fieldseg_core.dynamics.cluster_dbscan` (rounded points, as in
        Algorithm 1 of Le & Nguyen) or :func:`fieldseg_core.dynamics.cluster_sinks`.
    eps : float, optional
        DBSCAN radius in pixels (DBSCAN only).
    min_samples : int, optional
        DBSCAN core-point count, duplicates included (DBSCAN only).

    Returns
    -------
    labels : ndarray of int32, shape of ``mask``
        Ids ``1..k``, one per cluster (DBSCAN cluster ``j`` becomes ``j + 1``);
        DBSCAN noise and points left unassigned by the sinks clustering
        become background 0.

    Examples
    --------
    >>> import numpy as np
    >>> mask = np.array([[True, True, False, True, True]])
    >>> pts = np.array([[0.0, 0.4], [0.0, 0.6], [0.0, 4.1], [0.0, 3.9]])
    >>> labels_from_points(pts, mask, eps=1.5, min_samples=2)
    array([[1, 1, 0, 2, 2]], dtype=int32)
    """
    mask = validate_mask(mask, np.shape(mask))
    if mask.ndim not in (2, 3):
        raise ValueError(f"mask must be a 2D or 3D array, got {mask.ndim}D with shape {mask.shape}")
    cluster = _validate_choice(cluster, "cluster", _CLUSTERS)
    points = np.asarray(points)
    n_fg = int(np.count_nonzero(mask))
    if points.ndim != 2 or points.shape != (n_fg, mask.ndim):
        raise ValueError(f"points must have shape (mask.sum(), mask.ndim) = {(n_fg, mask.ndim)}, "
                         f"got {points.shape}")
    if cluster == "dbscan":
        ids = dynamics.cluster_dbscan(points, eps, min_samples) + 1
    else:
        ids = dynamics.cluster_sinks(points, mask.shape)
    out = np.zeros(mask.shape, dtype=np.int32)
    out[mask] = ids
    return out


def _same_partition(a, b):
    """Whether two cluster labellings (-1 = noise) agree up to renaming clusters."""
    if not np.array_equal(a < 0, b < 0):
        return False
    keep = a >= 0
    a, b = a[keep], b[keep]
    if a.size == 0:
        return True
    n_pairs = np.unique(a.astype(np.int64) * (int(b.max()) + 1) + b).size
    return n_pairs == np.unique(a).size == np.unique(b).size


# --------------------------------------------------------------------------
# studies
# --------------------------------------------------------------------------

def synthetic_benchmark(scenarios=TABLE4_SCENARIOS, seeds=(0,), flow="heat", cluster="dbscan",
                        n_iter=200, eps=1.5, min_samples=5, step=1.0, device=None,
                        progress=True):
    """Segment the synthetic scenarios of Le & Nguyen, Table 4, from their ideal flows.

    Parameters
    ----------
    scenarios : sequence of str, optional
        Names from :data:`fieldseg_core.synthetic.SCENARIOS`.
    seeds : sequence of int, optional
        Seeds of :func:`fieldseg_core.synthetic.scenario`; one row per
        scenario and seed.
    flow : {"centroid", "heat", "edt", "tsdf"}, optional
        ``"centroid"`` replicates the report's ``labels_to_flows``;
        ``"heat"`` (default) is Cellpose's.
    cluster : {"dbscan", "sinks"}, optional
        Clustering of the end points.
    n_iter : int, optional
        Euler steps (200 as in the report).
    eps : float, optional
        DBSCAN radius; 1.5 was the report's best value in Fig. 5.
    min_samples : int, optional
        DBSCAN ``min_samples`` (scikit-learn's default 5).
    step : float, optional
        Euler step size.
    device : None, str or torch.device, optional
        Device for the integration.
    progress : bool, optional
        Show a tqdm progress bar.

    Returns
    -------
    rows : list of dict
        ``scenario``, ``description``, ``seed``, ``flow``, ``cluster``,
        ``n_iter``, ``eps``, ``min_samples``, ``n_cells``, the keys of
        :func:`score` (``n_true``, ``n_pred``, ``tp``, ``fp``, ``fn``,
        ``ap50``, ``mean_iou``, ``mean_matched_iou``) and ``paper_mean_iou``
        (Le & Nguyen, Table 4; None for scenarios it does not list).

    Notes
    -----
    The flows are the ideal flows of the ground truth, so the study measures
    the dynamics and the clustering, not a network. ``n_cells`` is the
    number of cells the preset asks for; ``n_true`` the number present in
    the label image (they agree for the presets).

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 4.1.3 and Table 4.

    Examples
    --------
    >>> rows = synthetic_benchmark(["ex2"], flow="centroid", n_iter=50, device="cpu",
    ...                            progress=False)
    >>> row = rows[0]
    >>> row["tp"] + row["fn"] == row["n_true"], row["paper_mean_iou"]
    (True, 1.0)
    """
    scenarios = _validate_scenarios(scenarios)
    seeds = _validate_seeds(seeds)
    flow = _validate_choice(flow, "flow", tuple(FLOWS))
    cluster = _validate_choice(cluster, "cluster", _CLUSTERS)
    n_iter, step, eps, min_samples = _validate_dynamics(n_iter, step, eps, min_samples)
    progress = _validate_flag(progress, "progress")

    jobs = [(name, seed) for name in scenarios for seed in seeds]
    rows = []
    for name, seed in _progress(jobs, progress, f"Table 4 ({flow})"):
        preset = synthetic.SCENARIOS[name]
        _, truth = synthetic.scenario(name, seed)
        mask, traj = flow_trajectories(truth, flow, n_iter, step, device)
        pred = labels_from_points(traj[-1], mask, cluster, eps, min_samples)
        rows.append({"scenario": name, "description": preset["description"], "seed": seed,
                     "flow": flow, "cluster": cluster, "n_iter": n_iter, "eps": eps,
                     "min_samples": min_samples, "n_cells": preset["n_cells"],
                     **score(truth, pred), "paper_mean_iou": preset["paper_mean_iou"]})
    return rows


def epsilon_stress_test(eps_values=(0.5, 1.5, 5.0), n_iter=20, seed=0, flow="centroid",
                        min_samples=5, step=1.0, scenario="stress20", device=None,
                        progress=True):
    """DBSCAN ``eps`` on unconverged end points: Le & Nguyen, Fig. 5.

    Parameters
    ----------
    eps_values : sequence of float, optional
        DBSCAN radii to try (the report's three by default; pass a finer grid
        for a curve).
    n_iter : int, optional
        Euler steps; the report stops early at 20 so the end points remain
        diffuse clouds.
    seed : int, optional
        Seed of the scene.
    flow : {"centroid", "heat", "edt", "tsdf"}, optional
        Default ``"centroid"``, the report's flows.
    min_samples : int, optional
        DBSCAN ``min_samples``.
    step : float, optional
        Euler step size.
    scenario : str, optional
        Preset of :data:`fieldseg_core.synthetic.SCENARIOS`; ``"stress20"``
        is the 20-cell high-overlap scene.
    device : None, str or torch.device, optional
        Device for the integration.
    progress : bool, optional
        Show a tqdm progress bar.

    Returns
    -------
    rows : list of dict
        One per ``eps`` in the given order: ``scenario``, ``seed``, ``flow``,
        ``eps``, ``n_iter``, ``min_samples``, the keys of :func:`score`, and
        ``paper_tp``, ``paper_fp``, ``paper_fn``, ``paper_mean_iou`` -- the
        numbers of :data:`PAPER_FIG5` for that ``eps`` (None where the report
        gives none, and for every ``eps`` it did not test).

    Notes
    -----
    The scene is integrated once and the same end points are clustered with
    every ``eps``.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 4.1.4 and Fig. 5.

    Examples
    --------
    >>> rows = epsilon_stress_test(eps_values=(0.5, 1.5), device="cpu", progress=False)
    >>> [(r["eps"], r["paper_mean_iou"]) for r in rows]
    [(0.5, 0.747), (1.5, 0.873)]
    >>> all(r["tp"] + r["fn"] == r["n_true"] == 20 for r in rows)
    True
    """
    eps_values = _validate_eps_values(eps_values)
    n_iter = validate_number(n_iter, "n_iter", low=0, integer=True)
    step = validate_number(step, "step", low=0, low_inclusive=False)
    min_samples = validate_number(min_samples, "min_samples", low=1, integer=True)
    seed = validate_number(seed, "seed", low=0, integer=True)
    flow = _validate_choice(flow, "flow", tuple(FLOWS))
    scenario = _validate_choice(scenario, "scenario", tuple(synthetic.SCENARIOS))
    progress = _validate_flag(progress, "progress")

    _, truth = synthetic.scenario(scenario, seed)
    mask, traj = flow_trajectories(truth, flow, n_iter, step, device)
    rows = []
    for eps in _progress(eps_values, progress, "Fig. 5 eps"):
        pred = labels_from_points(traj[-1], mask, "dbscan", eps, min_samples)
        paper = PAPER_FIG5.get(eps, {})
        rows.append({"scenario": scenario, "seed": seed, "flow": flow, "eps": eps,
                     "n_iter": n_iter, "min_samples": min_samples, **score(truth, pred),
                     **{f"paper_{k}": paper.get(k) for k in ("tp", "fp", "fn", "mean_iou")}})
    return rows


def epsilon_iterations_grid(eps_values=(0.5, 1.0, 1.5, 2.5, 5.0),
                            iterations=tuple(range(0, 201, 10)), seed=0, flow="centroid",
                            min_samples=5, step=1.0, scenario="stress20", device=None,
                            progress=True):
    """Scores over a grid of DBSCAN ``eps`` and Euler iterations: Le & Nguyen, Fig. 6.

    Parameters
    ----------
    eps_values : sequence of float, optional
        DBSCAN radii.
    iterations : sequence of int, optional
        Iteration counts at which to cluster (0 = the pixel grid itself).
    seed, flow, min_samples, step, scenario, device, progress
        As in :func:`epsilon_stress_test`.

    Returns
    -------
    rows : list of dict
        One per (iteration, eps), distinct iterations ascending: ``scenario``,
        ``seed``, ``flow``, ``eps``, ``n_iter``, ``min_samples`` and the keys
        of :func:`score`.

    Notes
    -----
    The scene is integrated once, to ``max(iterations)`` steps, keeping the
    whole trajectory; the positions after ``n`` steps are then clustered for
    each requested ``n`` and ``eps``. At ``n = 0`` the points are the pixel
    centres themselves: with ``eps < 1`` no two are neighbours, so with
    ``min_samples > 1`` every pixel is noise and nothing is found, while
    ``eps >= 1`` joins touching cells into one cluster.

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 4.1.4 and Fig. 6.

    Examples
    --------
    >>> rows = epsilon_iterations_grid(eps_values=(0.5,), iterations=(0, 40), device="cpu",
    ...                                progress=False)
    >>> [(r["n_iter"], r["tp"]) for r in rows][0]       # the bare grid: all noise
    (0, 0)
    """
    eps_values = _validate_eps_values(eps_values)
    iterations = _validate_iterations(iterations)
    step = validate_number(step, "step", low=0, low_inclusive=False)
    min_samples = validate_number(min_samples, "min_samples", low=1, integer=True)
    seed = validate_number(seed, "seed", low=0, integer=True)
    flow = _validate_choice(flow, "flow", tuple(FLOWS))
    scenario = _validate_choice(scenario, "scenario", tuple(synthetic.SCENARIOS))
    progress = _validate_flag(progress, "progress")

    _, truth = synthetic.scenario(scenario, seed)
    mask, traj = flow_trajectories(truth, flow, iterations[-1], step, device)
    jobs = [(n, eps) for n in iterations for eps in eps_values]
    rows = []
    for n, eps in _progress(jobs, progress, "Fig. 6 grid"):
        pred = labels_from_points(traj[n], mask, "dbscan", eps, min_samples)
        rows.append({"scenario": scenario, "seed": seed, "flow": flow, "eps": eps,
                     "n_iter": n, "min_samples": min_samples, **score(truth, pred)})
    return rows


def _iterations_until_still(traj, tol):
    """First step count after which the median per-step displacement stays < tol."""
    if traj.shape[0] < 2 or traj.shape[1] == 0:
        return 0
    moves = np.median(np.linalg.norm(np.diff(traj, axis=0), axis=-1), axis=1)
    moving = np.flatnonzero(moves >= tol)
    if moving.size == 0:
        return 0
    last = int(moving[-1])       # step last -> last + 1 still moved too much
    return None if last == moves.size - 1 else last + 1


def _iterations_until_stable(traj, eps, min_samples, check_every):
    """First checkpoint from which the DBSCAN partition equals the final one."""
    n_iter = traj.shape[0] - 1
    final = dynamics.cluster_dbscan(traj[-1], eps, min_samples)
    checkpoints = list(range(0, n_iter, check_every)) + [n_iter]
    stable = n_iter
    # Walk back from the end: late (converged) positions cluster fast, and the
    # first mismatch ends the search, so early diffuse positions are rarely clustered.
    for t in reversed(checkpoints[:-1]):
        if not _same_partition(dynamics.cluster_dbscan(traj[t], eps, min_samples), final):
            break
        stable = t
    return stable


def flow_type_comparison(scenarios=TABLE4_SCENARIOS, flows=("centroid", "heat", "edt", "tsdf"),
                         seed=0, n_iter=200, eps=1.5, min_samples=5, step=1.0, check_every=5,
                         still_tol=0.1, device=None, progress=True):
    """Accuracy and settling time of several flow constructions on the same scenes.

    Parameters
    ----------
    scenarios : sequence of str, optional
        Presets of :data:`fieldseg_core.synthetic.SCENARIOS`.
    flows : sequence of str, optional
        Names from :data:`FLOWS`.
    seed : int, optional
        Seed of the scenes.
    n_iter : int, optional
        Euler steps; the accuracy is scored at ``n_iter``.
    eps, min_samples : float, int, optional
        DBSCAN parameters.
    step : float, optional
        Euler step size.
    check_every : int, optional
        Spacing of the checkpoints for ``iters_stable_partition``.
    still_tol : float, optional
        Displacement tolerance in pixels for ``iters_still``.
    device : None, str or torch.device, optional
        Device for the integration.
    progress : bool, optional
        Show a tqdm progress bar.

    Returns
    -------
    rows : list of dict
        One per (scenario, flow): ``scenario``, ``seed``, ``flow``,
        ``n_iter``, ``eps``, ``min_samples``, the keys of :func:`score`,
        ``iters_stable_partition`` and ``iters_still``.

    Notes
    -----
    Two notions of "iterations needed":

    ``iters_stable_partition``
        The smallest checkpoint ``t`` in ``0, check_every, 2 check_every,
        ..., n_iter`` such that DBSCAN of the positions after every checkpoint
        ``>= t`` gives the same partition (same noise points, same groups up
        to renaming) as after ``n_iter`` steps. It is ``n_iter`` when the
        partition was still changing at the last checkpoint before the end.
        This is what matters for the segmentation.
    ``iters_still``
        The smallest ``t`` such that for every later step the median over
        pixels of the distance moved in one step is below ``still_tol``.
        None if the points never come to rest within ``n_iter`` steps
        (unit-length flows can keep points hopping around a sink or along
        a skeleton ridge).

    All flows are followed with the same plain Euler scheme (no Omnipose
    suppression, no divergence rescaling), so EDT flows, whose points spread
    along the skeleton, may fragment at small ``eps`` [2]_ (Sec. 3).

    References
    ----------
    .. [1] Le & Nguyen, *Cellpose-SAM* (course report), Sec. 4.1.
    .. [2] Peters, *Vector fields for instance segmentation*, Sec. 3, 4 and 6.4.

    Examples
    --------
    >>> rows = flow_type_comparison(["ex2"], flows=("centroid",), n_iter=60, device="cpu",
    ...                             progress=False)
    >>> r = rows[0]
    >>> r["flow"], r["tp"] + r["fp"] == r["n_pred"], 0 <= r["iters_stable_partition"] <= 60
    ('centroid', True, True)
    """
    scenarios = _validate_scenarios(scenarios)
    flow_names = [_validate_choice(f, "flows entry", tuple(FLOWS))
                  for f in _validate_sequence(flows, "flows")]
    seed = validate_number(seed, "seed", low=0, integer=True)
    n_iter, step, eps, min_samples = _validate_dynamics(n_iter, step, eps, min_samples)
    check_every = validate_number(check_every, "check_every", low=1, integer=True)
    still_tol = validate_number(still_tol, "still_tol", low=0, low_inclusive=False)
    progress = _validate_flag(progress, "progress")

    jobs = [(name, f) for name in scenarios for f in flow_names]
    rows = []
    truths = {}
    for name, f in _progress(jobs, progress, "flow types"):
        if name not in truths:
            truths[name] = synthetic.scenario(name, seed)[1]
        truth = truths[name]
        mask, traj = flow_trajectories(truth, f, n_iter, step, device)
        pred = labels_from_points(traj[-1], mask, "dbscan", eps, min_samples)
        rows.append({"scenario": name, "seed": seed, "flow": f, "n_iter": n_iter, "eps": eps,
                     "min_samples": min_samples, **score(truth, pred),
                     "iters_stable_partition": _iterations_until_stable(
                         traj, eps, min_samples, check_every),
                     "iters_still": _iterations_until_still(traj, still_tol)})
    return rows


# --------------------------------------------------------------------------
# 3D: stitching per-slice 2D masks versus 3D flows (Le & Nguyen, Table 7)
# --------------------------------------------------------------------------

def per_slice_masks(labels_3d, flow="heat", min_size=1, device=None):
    """Segment every z-slice of a volume on its own, from ideal 2D flows (a 2D model's view).

    Parameters
    ----------
    labels_3d : (Z, Y, X) array of int
        Ground-truth volume; each slice's 2D flows are computed from it.
    flow : {"centroid", "heat", "edt", "tsdf"}
        Flow construction applied to each slice.
    min_size : int
        Smallest 2D mask kept (px, >= 0), as in
        :func:`fieldseg_core.dynamics.masks_from_flows`.
    device : str or torch.device, optional
        Device of the pixel dynamics (default: CUDA when available).

    Returns
    -------
    (Z, Y, X) ndarray of int
        Independent 2D label images; ids are not linked between slices
        (link them with :func:`fieldseg_core.dynamics.stitch_3d`).

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.zeros((3, 12, 12), int); vol[:, 2:10, 2:10] = 4
    >>> out = per_slice_masks(vol, device="cpu")
    >>> [int(out[z].max()) for z in range(3)], bool(np.array_equal(out > 0, vol > 0))
    ([1, 1, 1], True)
    """
    labels_3d = validate_labels(labels_3d, "labels_3d", ndims=(3,))
    _validate_choice(flow, "flow", tuple(FLOWS))
    min_size = validate_number(min_size, "min_size", low=0, integer=True)
    out = np.zeros(labels_3d.shape, dtype=np.int32)
    for z in np.flatnonzero(labels_3d.reshape(labels_3d.shape[0], -1).any(axis=1)):
        out[z] = dynamics.masks_from_flows(FLOWS[flow](labels_3d[z]), labels_3d[z] > 0,
                                           min_size=min_size, device=device)
    return out


def compare_3d(labels_3d, thresholds=(0.5, 0.25), device=None):
    """Stitched per-slice masks against 3D flows on one volume, from ideal flows.

    Four routes: per-slice 2D masks from 2D heat flows stitched at each IoU
    threshold (``stitch_threshold`` in Cellpose), 3D flows assembled from the
    2D flows of the three slice orientations
    (:func:`fieldseg_core.flows.flows_from_slices`, ``do_3D`` in Cellpose),
    and direct 3D heat flows as a reference.

    Parameters
    ----------
    labels_3d : (Z, Y, X) array of int
        Ground-truth volume.
    thresholds : sequence of float
        Stitching IoU thresholds, each in (0, 1].
    device : str or torch.device, optional
        Device of the pixel dynamics.

    Returns
    -------
    slices : (Z, Y, X) ndarray of int
        The unlinked per-slice masks.
    preds : dict of str -> ndarray
        Prediction of each route: ``"stitch <t>"``, ``"3D flows from slices"``,
        ``"3D heat flows"``.
    rows : list of dict
        Per route: ``method``, ``objects``, ``tp``, ``fp``, ``fn``, ``ap50`` and
        ``seconds`` (wall time including the flows; the stitching routes
        include the per-slice segmentation).

    References
    ----------
    .. [1] Le & Nguyen, course report on Cellpose-SAM, Table 7.

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.zeros((12, 10, 10), int)
    >>> vol[1:7, 2:8, 2:8] = 1; vol[7:11, 2:8, 2:8] = 2      # two cells stacked in z
    >>> _, preds, rows = compare_3d(vol, thresholds=(0.5,), device="cpu")
    >>> [(r["method"], r["objects"], r["tp"], r["fn"]) for r in rows]
    [('stitch 0.5', 1, 1, 1), ('3D flows from slices', 2, 2, 0), ('3D heat flows', 2, 2, 0)]
    """
    import time

    labels_3d = validate_labels(labels_3d, "labels_3d", ndims=(3,))
    thresholds = _validate_sequence(thresholds, "thresholds")
    for t in thresholds:
        validate_number(t, "thresholds", low=0, high=1, low_inclusive=False)
    preds, seconds = {}, {}
    t0 = time.perf_counter()
    slices = per_slice_masks(labels_3d, device=device)
    t_slices = time.perf_counter() - t0
    for thr in thresholds:
        t0 = time.perf_counter()
        preds[f"stitch {thr:g}"] = dynamics.stitch_3d(slices, iou_threshold=thr)
        seconds[f"stitch {thr:g}"] = t_slices + time.perf_counter() - t0
    for name, fn in (("3D flows from slices", flows.flows_from_slices), ("3D heat flows", flows.heat_flows)):
        t0 = time.perf_counter()
        preds[name] = dynamics.masks_from_flows(fn(labels_3d), labels_3d > 0, device=device)
        seconds[name] = time.perf_counter() - t0
    rows = []
    for name, pred in preds.items():
        m = metrics.matching(labels_3d, pred)
        rows.append({"method": name, "objects": int(pred.max()), "tp": int(m["tp"]), "fp": int(m["fp"]),
                     "fn": int(m["fn"]), "ap50": float(m["average_precision"]), "seconds": seconds[name]})
    return slices, preds, rows


__all__ += ["per_slice_masks", "compare_3d"]
