"""Instance and semantic segmentation scores for integer label images.

All functions take a ground-truth label image ``y_true`` and a prediction
``y_pred`` of the same 2D or 3D shape (0 = background, positive ids, gaps in
the ids allowed) and compare them object by object (instance scores) or
foreground against background (semantic scores).

The instance scores are built on one pairwise overlap table, computed in a
single :func:`numpy.bincount` over the paired pixel indices, and on a
one-to-one matching of objects whose IoU reaches a threshold. The definitions
follow the evaluation code of StarDist (``stardist.matching``) and Cellpose
(``cellpose.metrics``):

- average precision, AP = TP / (TP + FP + FN), as used by Cellpose and in
  Le & Nguyen (section 4.1.2, Eq. 2); also called the critical success index;
- panoptic quality PQ = SQ * RQ with SQ the mean IoU of matched pairs and
  RQ = TP / (TP + FP/2 + FN/2) (Kirillov et al.; Ruiz Vargas et al., Table 1);
- the Cell Tracking Challenge SEG measure (the SDF paper, section 3.2).

Conventions for empty images (no objects at all) are the same in every
function: when neither image has an object, every score is 1.0 ("nothing to
find, nothing found"); when exactly one has none, every score is 0.0. No
function returns NaN.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from ._labels import compact_ids
from ._validate import validate_labels, validate_number, validate_same_shape

__all__ = [
    "iou_matrix",
    "matching",
    "average_precision",
    "panoptic_quality",
    "seg_score",
    "foreground_iou",
    "foreground_dice",
    "mean_matched_iou",
    "count_error",
    "evaluate",
]


# --------------------------------------------------------------------------
# validation and small helpers
# --------------------------------------------------------------------------

def _validate_pair(y_true, y_pred):
    """Validate both label images and check that their shapes agree."""
    y_true = validate_labels(y_true, name="y_true")
    y_pred = validate_labels(y_pred, name="y_pred")
    validate_same_shape(y_true, y_pred, "y_true", "y_pred")
    return y_true, y_pred


def _validate_threshold(threshold, name="threshold"):
    """An IoU threshold must lie in (0, 1]: 0 would match disjoint objects."""
    return validate_number(threshold, name, low=0.0, high=1.0, low_inclusive=False)


def _validate_thresholds(thresholds):
    """Return thresholds as a 1-D float array, each in (0, 1]."""
    ndim = np.ndim(thresholds)
    if ndim > 1:
        raise ValueError(
            f"thresholds must be a number or a 1-D sequence, got shape {np.shape(thresholds)}"
        )
    values = [thresholds] if ndim == 0 else list(thresholds)
    if not values:
        raise ValueError("thresholds must contain at least one value")
    return np.array([_validate_threshold(v, "thresholds") for v in values])


def _ratio(num, den, both_empty):
    """num / den with the module's conventions for empty images.

    ``both_empty`` means neither image has an object: perfect agreement, 1.0.
    Any other zero denominator means one side is empty: 0.0.
    """
    if both_empty:
        return 1.0
    return float(num) / float(den) if den else 0.0


def _sequential_index(labels):
    """Map ids to 0..n (0 = background); return (flat index, sorted object ids)."""
    ids, inverse = compact_ids(labels)
    if ids.size and ids[0] == 0:
        return inverse, ids[1:]
    # No background pixel: shift so that index 0 stays reserved for background.
    return inverse + 1, ids


def _overlap_table(y_true, y_pred):
    """Pixel counts of every (true, pred) index pair, background included.

    Returns ``(overlap, true_ids, pred_ids)`` where ``overlap`` has shape
    ``(n_true + 1, n_pred + 1)``; row/column 0 is background.
    """
    t_idx, true_ids = _sequential_index(y_true)
    p_idx, pred_ids = _sequential_index(y_pred)
    n_cols = pred_ids.size + 1
    n_cells = (true_ids.size + 1) * n_cols
    overlap = np.bincount(t_idx * n_cols + p_idx, minlength=n_cells)
    return overlap.reshape(true_ids.size + 1, n_cols), true_ids, pred_ids


def _iou_from_overlap(overlap):
    """IoU of the object pairs (background row and column dropped)."""
    inter = overlap[1:, 1:].astype(np.float64)
    area_true = overlap[1:, :].sum(axis=1)
    area_pred = overlap[:, 1:].sum(axis=0)
    union = area_true[:, None] + area_pred[None, :] - inter
    # Every object has at least one pixel, so union > 0 wherever it is used.
    return inter / np.maximum(union, 1)


def _match_pairs(iou, threshold):
    """One-to-one matching of pairs with IoU >= threshold.

    Maximises the number of matched pairs and, among matchings of that size,
    the sum of their IoUs. Returns index arrays ``(rows, cols)`` sorted by row.
    """
    rows, cols = np.nonzero(iou >= threshold)
    if rows.size == 0:
        return rows, cols
    row_count = np.bincount(rows)
    col_count = np.bincount(cols)
    # A candidate whose row and column have no other candidate is a connected
    # component of its own and belongs to every maximum matching; only the
    # remaining (contested) candidates need the assignment solver. For
    # threshold > 0.5 every candidate is of the first kind.
    alone = (row_count[rows] == 1) & (col_count[cols] == 1)
    keep_rows, keep_cols = [rows[alone]], [cols[alone]]
    if not alone.all():
        sub_rows = np.unique(rows[~alone])
        sub_cols = np.unique(cols[~alone])
        sub = iou[np.ix_(sub_rows, sub_cols)]
        ok = sub >= threshold
        # Each match is worth 1; the IoU bonus sums to at most 1/2 < 1, so it
        # only breaks ties between matchings with the same number of pairs.
        bonus = sub / (2.0 * min(sub.shape))
        cost = -np.where(ok, 1.0 + bonus, 0.0)
        r, c = linear_sum_assignment(cost)
        valid = ok[r, c]
        keep_rows.append(sub_rows[r[valid]])
        keep_cols.append(sub_cols[c[valid]])
    rows = np.concatenate(keep_rows)
    cols = np.concatenate(keep_cols)
    order = np.argsort(rows, kind="stable")
    return rows[order], cols[order]


def _stats_from_iou(iou, threshold, true_ids, pred_ids):
    """Matching counts and derived scores from an IoU matrix."""
    n_true, n_pred = iou.shape
    rows, cols = _match_pairs(iou, threshold)
    matched = iou[rows, cols]
    tp = int(rows.size)
    fp = n_pred - tp
    fn = n_true - tp
    both_empty = n_true == 0 and n_pred == 0
    sq = _ratio(matched.sum(), tp, both_empty)
    rq = _ratio(tp, tp + 0.5 * fp + 0.5 * fn, both_empty)
    return {
        "threshold": float(threshold),
        "tp": tp,
        "fp": int(fp),
        "fn": int(fn),
        "n_true": int(n_true),
        "n_pred": int(n_pred),
        "precision": _ratio(tp, tp + fp, both_empty),
        "recall": _ratio(tp, tp + fn, both_empty),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, both_empty),
        "average_precision": _ratio(tp, tp + fp + fn, both_empty),
        "mean_matched_iou": sq,
        "panoptic_quality": sq * rq,
        "segmentation_quality": sq,
        "recognition_quality": rq,
        "matched_true_ids": true_ids[rows],
        "matched_pred_ids": pred_ids[cols],
        "matched_iou": matched,
    }


def _seg_from_overlap(overlap):
    """Cell Tracking Challenge SEG from an overlap table (see :func:`seg_score`)."""
    n_true, n_pred = overlap.shape[0] - 1, overlap.shape[1] - 1
    if n_true == 0:
        return 1.0 if n_pred == 0 else 0.0
    inter = overlap[1:, 1:]
    area_true = overlap[1:, :].sum(axis=1)
    area_pred = overlap[:, 1:].sum(axis=0)
    if n_pred == 0:
        return 0.0
    # Integer test 2|R∩S| > |R|: exactly half an object is not a match.
    best = inter.argmax(axis=1)
    best_inter = inter[np.arange(n_true), best]
    is_match = 2 * best_inter > area_true
    union = area_true + area_pred[best] - best_inter
    jaccard = np.where(is_match, best_inter / union, 0.0)
    return float(jaccard.mean())


def _foreground_counts(y_true, y_pred):
    """(|A ∩ B|, |A|, |B|) for the foregrounds A, B of the two images."""
    fg_true = y_true != 0
    fg_pred = y_pred != 0
    inter = int(np.count_nonzero(fg_true & fg_pred))
    return inter, int(np.count_nonzero(fg_true)), int(np.count_nonzero(fg_pred))


def _foreground_counts_from_overlap(overlap):
    """(|A ∩ B|, |A|, |B|) read off an overlap table (row/column 0 = background)."""
    return (int(overlap[1:, 1:].sum()), int(overlap[1:, :].sum()), int(overlap[:, 1:].sum()))


def _iou_of_counts(inter, a, b):
    """Jaccard index of two sets from their intersection and sizes; 1.0 for two empty sets."""
    union = a + b - inter
    return 1.0 if union == 0 else inter / union


def _dice_of_counts(inter, a, b):
    """Dice coefficient from the intersection and sizes; 1.0 for two empty sets."""
    return 1.0 if a + b == 0 else 2.0 * inter / (a + b)


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def iou_matrix(y_true, y_pred, *, return_ids=False):
    """Intersection over union of every pair of true and predicted objects.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Ground-truth and predicted label images of the same shape
        (0 = background, positive ids; gaps allowed).
    return_ids : bool, optional
        Also return the object ids that label the rows and columns.

    Returns
    -------
    iou : (n_true, n_pred) ndarray of float64
        ``iou[i, j] = |T_i ∩ P_j| / |T_i ∪ P_j|``. Row ``i`` is the ``i``-th
        smallest id of ``y_true`` and column ``j`` the ``j``-th smallest id of
        ``y_pred``. Has zero rows (columns) when ``y_true`` (``y_pred``) has
        no object.
    true_ids, pred_ids : ndarray of int
        The sorted object ids of each image; only with ``return_ids=True``.

    Notes
    -----
    All pairwise intersections come from one :func:`numpy.bincount` over the
    paired flat indices of the two relabelled images, so the cost is
    ``O(pixels + n_true * n_pred)`` time and ``O(n_true * n_pred)`` memory.

    References
    ----------
    .. [1] Le & Nguyen, section 4.1.2, Eq. (1).

    Examples
    --------
    >>> import numpy as np
    >>> y_true = np.array([[1, 1, 0, 0],
    ...                    [1, 1, 0, 7]])
    >>> y_pred = np.array([[2, 2, 2, 0],
    ...                    [0, 0, 0, 5]])
    >>> iou, t_ids, p_ids = iou_matrix(y_true, y_pred, return_ids=True)
    >>> t_ids.tolist(), p_ids.tolist()
    ([1, 7], [2, 5])
    >>> iou.round(2).tolist()
    [[0.4, 0.0], [0.0, 1.0]]
    """
    y_true, y_pred = _validate_pair(y_true, y_pred)
    overlap, true_ids, pred_ids = _overlap_table(y_true, y_pred)
    iou = _iou_from_overlap(overlap)
    if return_ids:
        return iou, true_ids, pred_ids
    return iou


def matching(y_true, y_pred, threshold=0.5):
    """Match objects one-to-one at an IoU threshold and count TP, FP and FN.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Ground-truth and predicted label images of the same shape.
    threshold : float, optional
        Minimum IoU for a pair to count as a match, in (0, 1].

    Returns
    -------
    stats : dict
        ``tp``, ``fp``, ``fn``, ``n_true``, ``n_pred`` (Python ints);
        ``precision`` = TP/(TP+FP), ``recall`` = TP/(TP+FN),
        ``f1`` = 2TP/(2TP+FP+FN), ``average_precision`` = TP/(TP+FP+FN),
        ``mean_matched_iou`` (= ``segmentation_quality``),
        ``recognition_quality``, ``panoptic_quality`` and ``threshold``
        (Python floats); ``matched_true_ids``, ``matched_pred_ids`` and
        ``matched_iou`` (arrays describing the matched pairs, sorted by true
        id).

    Notes
    -----
    Among all one-to-one matchings that use only pairs with
    IoU >= ``threshold``, the one with the most pairs is chosen; ties are
    broken by the larger sum of matched IoUs. It is found with
    :func:`scipy.optimize.linear_sum_assignment`, which is only needed for
    objects with more than one candidate partner. For ``threshold > 0.5`` an
    object can overlap at most one partner with IoU above the threshold, so
    the matching is unique and no solver runs.

    The counts agree with StarDist's ``matching`` and Cellpose's
    ``metrics.average_precision``. Those codes break ties by the IoU of all
    assigned pairs, including pairs below the threshold; so for
    ``threshold < 0.5`` and tied maximum matchings, ``mean_matched_iou`` may
    differ from theirs, never TP/FP/FN.

    Empty images: with no object on either side every ratio is 1.0; with
    objects on one side only every ratio is 0.0 (``tp = 0``, ``fp`` or
    ``fn`` is the object count). Likewise, when there are objects but no
    match, ``mean_matched_iou`` is 0.0.

    References
    ----------
    .. [1] Le & Nguyen, section 4.1.2, Eq. (2) (AP = TP / (TP + FP + FN)).
    .. [2] Schmidt et al., "Cell Detection with Star-Convex Polygons",
           MICCAI 2018 (StarDist evaluation code).
    .. [3] Stringer et al., "Cellpose: a generalist algorithm for cellular
           segmentation", Nature Methods 18, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> y_true = np.array([[1, 1, 0, 2, 2]])
    >>> y_pred = np.array([[3, 3, 0, 0, 4]])
    >>> s = matching(y_true, y_pred, threshold=0.5)
    >>> s["tp"], s["fp"], s["fn"], s["average_precision"]
    (2, 0, 0, 1.0)
    >>> s["mean_matched_iou"]
    0.75
    """
    y_true, y_pred = _validate_pair(y_true, y_pred)
    threshold = _validate_threshold(threshold)
    overlap, true_ids, pred_ids = _overlap_table(y_true, y_pred)
    return _stats_from_iou(_iou_from_overlap(overlap), threshold, true_ids, pred_ids)


def average_precision(y_true, y_pred, thresholds=(0.5, 0.75, 0.9)):
    """Average precision TP / (TP + FP + FN) at one or more IoU thresholds.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Ground-truth and predicted label images of the same shape.
    thresholds : float or sequence of float, optional
        IoU thresholds, each in (0, 1].

    Returns
    -------
    ap : (n_thresholds,) ndarray of float64
        One value per threshold (a 1-element array for a scalar threshold).

    Notes
    -----
    This is Cellpose's "average precision" (also called the critical
    success index or, in StarDist, ``accuracy``), not the area under a
    precision-recall curve. The IoU matrix is computed once for all
    thresholds; matching follows :func:`matching`. Both images empty gives
    1.0, exactly one empty gives 0.0.

    References
    ----------
    .. [1] Le & Nguyen, section 4.1.2, Eq. (2).
    .. [2] Stringer et al., Nature Methods 18, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> y_true = np.array([[1, 1, 1, 1, 0, 2]])
    >>> y_pred = np.array([[1, 1, 1, 0, 0, 0]])
    >>> average_precision(y_true, y_pred, thresholds=(0.5, 0.8))
    array([0.5, 0. ])
    """
    y_true, y_pred = _validate_pair(y_true, y_pred)
    thresholds = _validate_thresholds(thresholds)
    overlap, true_ids, pred_ids = _overlap_table(y_true, y_pred)
    iou = _iou_from_overlap(overlap)
    return np.array(
        [_stats_from_iou(iou, t, true_ids, pred_ids)["average_precision"] for t in thresholds]
    )


def panoptic_quality(y_true, y_pred, threshold=0.5):
    """Panoptic, segmentation and recognition quality of an instance labelling.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Ground-truth and predicted label images of the same shape.
    threshold : float, optional
        Minimum IoU for a match, in (0, 1]. The standard definition uses 0.5.

    Returns
    -------
    pq, sq, rq : float
        ``sq`` is the mean IoU of matched pairs, ``rq = TP / (TP + FP/2 +
        FN/2)`` and ``pq = sq * rq``.

    Notes
    -----
    Ruiz Vargas et al. reports these for single-class cell images (Table 1, computed
    there with TorchMetrics). Background is not a class here: only the
    objects are scored. Both images empty gives (1, 1, 1); objects with no
    match (including one side empty) give (0, 0, 0).

    References
    ----------
    .. [1] Kirillov et al., "Panoptic Segmentation", CVPR 2019.
    .. [2] Ruiz Vargas et al., Table 1.

    Examples
    --------
    >>> import numpy as np
    >>> y_true = np.array([[1, 1, 0, 2, 2]])
    >>> y_pred = np.array([[1, 1, 0, 0, 3]])
    >>> panoptic_quality(y_true, y_pred, threshold=0.6)
    (0.5, 1.0, 0.5)
    """
    s = matching(y_true, y_pred, threshold)
    return s["panoptic_quality"], s["segmentation_quality"], s["recognition_quality"]


def seg_score(y_true, y_pred):
    """Cell Tracking Challenge SEG measure.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Ground-truth and predicted label images of the same shape.

    Returns
    -------
    seg : float
        Mean over the true objects R of J(R, S), the Jaccard index with the
        predicted object S that covers more than half of R, or 0 when no
        predicted object does.

    Notes
    -----
    ``|R ∩ S| > 0.5 |R|`` can hold for at most one S because predicted
    objects are disjoint; covering exactly half of R is not a match. The
    score is asymmetric: predicted objects matching no true object cost
    nothing. Neither image having an object gives 1.0; objects on one side
    only give 0.0.

    References
    ----------
    .. [1] Maška et al., "A benchmark for comparison of cell tracking
           algorithms", Bioinformatics 30(11), 2014.
    .. [2] The SDF paper, section 3.2.

    Examples
    --------
    >>> import numpy as np
    >>> y_true = np.array([[1, 1, 1, 1, 0, 2, 2]])
    >>> y_pred = np.array([[5, 5, 5, 0, 0, 6, 0]])
    >>> seg_score(y_true, y_pred)  # (3/4 + 0) / 2; object 2 only half covered
    0.375
    """
    y_true, y_pred = _validate_pair(y_true, y_pred)
    overlap, _, _ = _overlap_table(y_true, y_pred)
    return _seg_from_overlap(overlap)


def foreground_iou(y_true, y_pred):
    """Semantic IoU (Jaccard index) of the two foregrounds.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Label images of the same shape; every nonzero pixel is foreground.

    Returns
    -------
    iou : float
        ``|A ∩ B| / |A ∪ B|`` for the foregrounds A and B; 1.0 when both are
        empty.

    Notes
    -----
    Object identities are ignored: a prediction that merges every cell into
    one blob can still score 1.

    References
    ----------
    .. [1] Ruiz Vargas et al., Table 1 (IoU).

    Examples
    --------
    >>> import numpy as np
    >>> foreground_iou(np.array([[1, 1, 0, 0]]), np.array([[0, 2, 3, 0]]))
    0.3333333333333333
    """
    y_true, y_pred = _validate_pair(y_true, y_pred)
    return _iou_of_counts(*_foreground_counts(y_true, y_pred))


def foreground_dice(y_true, y_pred):
    """Semantic Dice coefficient of the two foregrounds.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Label images of the same shape; every nonzero pixel is foreground.

    Returns
    -------
    dice : float
        ``2 |A ∩ B| / (|A| + |B|)`` for the foregrounds A and B; 1.0 when both
        are empty.

    Notes
    -----
    Dice and IoU are monotone in each other, ``D = 2 J / (1 + J)``.

    References
    ----------
    .. [1] Ruiz Vargas et al., Table 1 (Dice).

    Examples
    --------
    >>> import numpy as np
    >>> foreground_dice(np.array([[1, 1, 0, 0]]), np.array([[0, 2, 3, 0]]))
    0.5
    """
    y_true, y_pred = _validate_pair(y_true, y_pred)
    return _dice_of_counts(*_foreground_counts(y_true, y_pred))


def mean_matched_iou(y_true, y_pred, threshold=0.5):
    """Mean IoU over the pairs matched by :func:`matching`.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Ground-truth and predicted label images of the same shape.
    threshold : float, optional
        Minimum IoU for a match, in (0, 1].

    Returns
    -------
    miou : float
        Mean IoU of the matched pairs (the panoptic SQ); 1.0 when neither
        image has an object, 0.0 when there are objects but no match.

    References
    ----------
    .. [1] Le & Nguyen, section 4.1.4 (mean IoU in the DBSCAN sensitivity study).

    Examples
    --------
    >>> import numpy as np
    >>> y_true = np.array([[1, 1, 0, 2, 2]])
    >>> y_pred = np.array([[1, 1, 0, 0, 3]])
    >>> mean_matched_iou(y_true, y_pred)  # pairs with IoU 1 and 1/2
    0.75
    """
    return matching(y_true, y_pred, threshold)["mean_matched_iou"]


def count_error(y_true, y_pred):
    """Signed error in the number of objects, ``n_pred - n_true``.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Ground-truth and predicted label images of the same shape.

    Returns
    -------
    error : int
        Positive when the prediction has too many objects (e.g. split cells),
        negative when it has too few (e.g. merged or missed cells). Use
        ``abs`` and average over images for a counting MAE.

    Examples
    --------
    >>> import numpy as np
    >>> count_error(np.array([[1, 0, 2]]), np.array([[4, 0, 0]]))
    -1
    """
    y_true, y_pred = _validate_pair(y_true, y_pred)
    _, true_ids = _sequential_index(y_true)
    _, pred_ids = _sequential_index(y_pred)
    return int(pred_ids.size) - int(true_ids.size)


def evaluate(y_true, y_pred):
    """All scores of this module for one image pair, as a table row.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Ground-truth and predicted label images of the same shape.

    Returns
    -------
    scores : dict
        ``iou`` and ``dice`` (foreground), ``pq``, ``sq``, ``rq``,
        ``mean_matched_iou``, ``tp``, ``fp``, ``fn`` (at IoU 0.5), ``ap50``,
        ``ap75``, ``ap90`` (average precision at IoU 0.5, 0.75, 0.9),
        ``seg`` (Cell Tracking Challenge SEG) and ``count_error``
        (``n_pred - n_true``). Counts are Python ints, scores Python floats.

    Notes
    -----
    The overlap table is computed once and shared by every score. The keys
    match the rows of Ruiz Vargas et al., Table 1 (IoU, Dice, PQ, SQ, RQ), plus the
    AP scores of Le & Nguyen and Peters and SEG of the SDF paper. Empty-image
    conventions are those of the individual functions.

    References
    ----------
    .. [1] Ruiz Vargas et al., Table 1.

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([[1, 1, 0, 2]])
    >>> scores = evaluate(y, y)
    >>> scores["pq"], scores["ap90"], scores["seg"], scores["count_error"]
    (1.0, 1.0, 1.0, 0)
    """
    y_true, y_pred = _validate_pair(y_true, y_pred)
    overlap, true_ids, pred_ids = _overlap_table(y_true, y_pred)
    iou = _iou_from_overlap(overlap)
    at = {t: _stats_from_iou(iou, t, true_ids, pred_ids) for t in (0.5, 0.75, 0.9)}
    s50 = at[0.5]
    counts = _foreground_counts_from_overlap(overlap)
    return {
        "iou": _iou_of_counts(*counts),
        "dice": _dice_of_counts(*counts),
        "pq": s50["panoptic_quality"],
        "sq": s50["segmentation_quality"],
        "rq": s50["recognition_quality"],
        "ap50": s50["average_precision"],
        "ap75": at[0.75]["average_precision"],
        "ap90": at[0.9]["average_precision"],
        "seg": _seg_from_overlap(overlap),
        "mean_matched_iou": s50["mean_matched_iou"],
        "tp": s50["tp"],
        "fp": s50["fp"],
        "fn": s50["fn"],
        "count_error": int(pred_ids.size - true_ids.size),
    }


# --------------------------------------------------------------------------
# boundary accuracy
# --------------------------------------------------------------------------

def boundary_f1(y_true, y_pred, tolerance=1.0):
    """Boundary F1 score: how well the instance outlines agree, within a tolerance.

    Parameters
    ----------
    y_true, y_pred : (M, N) or (P, M, N) array of int
        Ground-truth and predicted label images of the same shape.
    tolerance : float
        Largest distance (pixels, Euclidean between pixel centres) at which a
        boundary pixel still counts as matched, ``>= 0``.

    Returns
    -------
    f1 : float
        Harmonic mean of boundary precision and recall, in [0, 1].

    Notes
    -----
    The boundary of a label image is the set of object pixels with a
    neighbour (full connectivity) of another label, background or another
    object (:func:`skimage.segmentation.find_boundaries`, ``mode="inner"``),
    so the shared border of two touching cells counts on both sides. With
    :math:`B_T, B_P` the true and predicted boundary pixels and
    :math:`d_T, d_P` the distance to the nearest pixel of each,

    .. math::

        P = \\frac{|\\{x \\in B_P : d_T(x) \\le \\tau\\}|}{|B_P|},\\quad
        R = \\frac{|\\{x \\in B_T : d_P(x) \\le \\tau\\}|}{|B_T|},\\quad
        F_1 = \\frac{2PR}{P + R}.

    Two images without boundaries score 1, one without boundaries 0 (the
    module's empty-image convention). This is the contour score the SDF
    paper's "boundary accuracy" calls for; it is independent of how the
    objects are matched.

    References
    ----------
    .. [1] G. Csurka, D. Larlus, F. Perronnin, "What is a good evaluation
       measure for semantic segmentation?", BMVC 2013 (boundary F1).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.zeros((10, 10), dtype=int); y[3:7, 3:7] = 1
    >>> boundary_f1(y, y)
    1.0
    >>> shifted = np.roll(y, 2, axis=1)     # 8 of the 12 outline pixels within 1 px
    >>> round(boundary_f1(y, shifted, tolerance=1.0), 4)
    0.6667
    """
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries

    y_true, y_pred = _validate_pair(y_true, y_pred)
    tolerance = validate_number(tolerance, "tolerance", low=0.0)
    b_true = find_boundaries(y_true, mode="inner")
    b_pred = find_boundaries(y_pred, mode="inner")
    n_true, n_pred = int(b_true.sum()), int(b_pred.sum())
    if n_true == 0 and n_pred == 0:
        return 1.0
    if n_true == 0 or n_pred == 0:
        return 0.0
    to_true = ndi.distance_transform_edt(~b_true)
    to_pred = ndi.distance_transform_edt(~b_pred)
    precision = float(np.mean(to_true[b_pred] <= tolerance))
    recall = float(np.mean(to_pred[b_true] <= tolerance))
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


__all__ += ["boundary_f1"]
