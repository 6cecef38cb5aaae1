"""Tests for fieldseg_core.metrics.

Expected numbers are worked out by hand in the comments, or come from a
pure-Python brute-force reference (pixel sets and exhaustive matching) that
shares no code with the module.
"""

import itertools

import numpy as np
import pytest

from fieldseg_core import metrics as M

# --------------------------------------------------------------------------
# a hand-computed 2D case
# --------------------------------------------------------------------------

# true 1: 6 px, true 2: 4 px, true 3: 2 px
# pred 5: 4 px inside true 1, pred 6 == true 2, pred 7, pred 8: 1 px each in background
Y_TRUE = np.array([
    [1, 1, 1, 0, 2, 2],
    [1, 1, 1, 0, 2, 2],
    [0, 0, 0, 0, 0, 0],
    [3, 3, 0, 0, 0, 0],
])
Y_PRED = np.array([
    [5, 5, 0, 0, 6, 6],
    [5, 5, 0, 0, 6, 6],
    [0, 0, 8, 0, 0, 0],
    [0, 0, 0, 0, 0, 7],
])


def test_iou_matrix_hand_case():
    iou, t_ids, p_ids = M.iou_matrix(Y_TRUE, Y_PRED, return_ids=True)
    assert t_ids.tolist() == [1, 2, 3]
    assert p_ids.tolist() == [5, 6, 7, 8]
    expected = np.zeros((3, 4))
    expected[0, 0] = 4 / 6  # |1 ∩ 5| = 4, |1 ∪ 5| = 6 + 4 - 4 = 6
    expected[1, 1] = 4 / 4  # identical objects
    np.testing.assert_allclose(iou, expected)
    np.testing.assert_array_equal(M.iou_matrix(Y_TRUE, Y_PRED), iou)


def test_matching_hand_case_threshold_05():
    s = M.matching(Y_TRUE, Y_PRED, threshold=0.5)
    # matches (1,5) IoU 2/3 and (2,6) IoU 1; unmatched: true 3, preds 7 and 8
    assert (s["tp"], s["fp"], s["fn"], s["n_true"], s["n_pred"]) == (2, 2, 1, 3, 4)
    for key in ("tp", "fp", "fn", "n_true", "n_pred"):
        assert type(s[key]) is int
    assert s["precision"] == pytest.approx(2 / 4)  # TP / (TP + FP)
    assert s["recall"] == pytest.approx(2 / 3)  # TP / (TP + FN)
    assert s["f1"] == pytest.approx(4 / 7)  # 2*2 / (2*2 + 2 + 1)
    assert s["average_precision"] == pytest.approx(2 / 5)  # 2 / (2 + 2 + 1)
    assert s["mean_matched_iou"] == pytest.approx(5 / 6)  # (2/3 + 1) / 2
    assert s["matched_true_ids"].tolist() == [1, 2]
    assert s["matched_pred_ids"].tolist() == [5, 6]
    np.testing.assert_allclose(s["matched_iou"], [2 / 3, 1.0])


def test_matching_hand_case_higher_thresholds():
    # at 0.75 and 0.9 only (2,6) with IoU 1 survives: TP 1, FP 3, FN 2 -> AP 1/6
    for t in (0.75, 0.9):
        s = M.matching(Y_TRUE, Y_PRED, threshold=t)
        assert (s["tp"], s["fp"], s["fn"]) == (1, 3, 2)
        assert s["average_precision"] == pytest.approx(1 / 6)
    np.testing.assert_allclose(
        M.average_precision(Y_TRUE, Y_PRED), [2 / 5, 1 / 6, 1 / 6]
    )


def test_panoptic_hand_case():
    pq, sq, rq = M.panoptic_quality(Y_TRUE, Y_PRED)
    assert sq == pytest.approx(5 / 6)  # mean IoU of (2/3, 1)
    assert rq == pytest.approx(4 / 7)  # 2 / (2 + 2/2 + 1/2)
    assert pq == pytest.approx(10 / 21)  # 5/6 * 4/7


def test_semantic_hand_case():
    # foregrounds: true 6+4+2 = 12 px, pred 4+4+1+1 = 10 px, intersection 4+4 = 8 px
    assert M.foreground_iou(Y_TRUE, Y_PRED) == pytest.approx(8 / 14)  # 8 / (12 + 10 - 8)
    assert M.foreground_dice(Y_TRUE, Y_PRED) == pytest.approx(16 / 22)  # 2*8 / (12 + 10)


def test_seg_and_count_hand_case():
    # true 1: pred 5 covers 4 > 6/2 px -> J = 4/6; true 2: J = 1; true 3: nothing -> 0
    assert M.seg_score(Y_TRUE, Y_PRED) == pytest.approx((4 / 6 + 1 + 0) / 3)
    assert M.count_error(Y_TRUE, Y_PRED) == 1  # 4 predicted - 3 true
    assert M.count_error(Y_PRED, Y_TRUE) == -1


def test_evaluate_hand_case():
    e = M.evaluate(Y_TRUE, Y_PRED)
    expected = {
        "iou": 8 / 14, "dice": 16 / 22, "pq": 10 / 21, "sq": 5 / 6, "rq": 4 / 7,
        "ap50": 2 / 5, "ap75": 1 / 6, "ap90": 1 / 6, "seg": 5 / 9,
        "mean_matched_iou": 5 / 6, "tp": 2, "fp": 2, "fn": 1, "count_error": 1,
    }
    assert set(e) == set(expected)
    for key, value in expected.items():
        assert e[key] == pytest.approx(value), key
    assert all(type(e[k]) is int for k in ("tp", "fp", "fn", "count_error"))


# --------------------------------------------------------------------------
# matching rules: maximum cardinality, then larger IoU
# --------------------------------------------------------------------------

def test_matching_maximises_number_of_pairs():
    # 1 x 20 image. true A = px 0..9, true B = px 10..19
    # pred X = px 3..14 (12 px), pred Y = px 0..2 (3 px)
    # IoU(A,X) = 7/15 ~ .467, IoU(B,X) = 5/17 ~ .294, IoU(A,Y) = 3/10 = .3
    y_true = np.array([[1] * 10 + [2] * 10])
    y_pred = np.array([[2] * 3 + [1] * 12 + [0] * 5])
    # at 0.25 the greedy best pair A-X would give 1 match; A-Y + B-X gives 2
    s = M.matching(y_true, y_pred, threshold=0.25)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 0, 0)
    assert s["matched_pred_ids"].tolist() == [2, 1]  # A-Y, B-X
    assert s["mean_matched_iou"] == pytest.approx((3 / 10 + 5 / 17) / 2)
    # at 0.4 only A-X qualifies
    s = M.matching(y_true, y_pred, threshold=0.4)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 1)
    assert s["mean_matched_iou"] == pytest.approx(7 / 15)


def test_matching_ties_broken_by_larger_iou():
    # true A = px 0..9; pred X = px 0..5 (IoU .6), pred Y = px 6..9 (IoU .4)
    y_true = np.ones((1, 10), dtype=int)
    y_pred = np.array([[1] * 6 + [2] * 4])
    s = M.matching(y_true, y_pred, threshold=0.3)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 1, 0)
    assert s["matched_pred_ids"].tolist() == [1]
    assert s["mean_matched_iou"] == pytest.approx(0.6)


def test_iou_exactly_at_threshold_is_a_match():
    # true = px 0..3, pred = px 0..1: IoU = 2/4 = 0.5 exactly
    y_true = np.array([[1, 1, 1, 1]])
    y_pred = np.array([[1, 1, 0, 0]])
    assert M.matching(y_true, y_pred, threshold=0.5)["tp"] == 1
    assert M.matching(y_true, y_pred, threshold=0.51)["tp"] == 0


# --------------------------------------------------------------------------
# brute-force reference
# --------------------------------------------------------------------------

def _pixel_sets(labels):
    """Object id -> set of pixel coordinates, in pure Python."""
    sets = {}
    for idx in itertools.product(*(range(n) for n in labels.shape)):
        v = int(labels[idx])
        if v:
            sets.setdefault(v, set()).add(idx)
    return sets


def _brute_iou(t_sets, p_sets):
    return {
        (i, j): len(a & b) / len(a | b)
        for i, a in t_sets.items() for j, b in p_sets.items()
    }


def _brute_best_matching(t_ids, p_ids, iou, threshold):
    """Exhaustive search: most pairs with IoU >= threshold, then largest IoU sum."""
    best = (0, 0.0)

    def search(k, used, count, total):
        nonlocal best
        if k == len(t_ids):
            if count > best[0] or (count == best[0] and total > best[1]):
                best = (count, total)
            return
        search(k + 1, used, count, total)  # leave true object k unmatched
        for j in p_ids:
            v = iou[(t_ids[k], j)]
            if j not in used and v >= threshold:
                search(k + 1, used | {j}, count + 1, total + v)

    search(0, frozenset(), 0, 0.0)
    return best


def _brute_seg(t_sets, p_sets):
    if not t_sets:
        return 1.0 if not p_sets else 0.0
    scores = []
    for r in t_sets.values():
        js = [len(r & s) / len(r | s) for s in p_sets.values() if 2 * len(r & s) > len(r)]
        assert len(js) <= 1
        scores.append(js[0] if js else 0.0)
    return sum(scores) / len(scores)


def _random_labels(rng, shape, kind):
    if kind == "noise":
        # many fragmented, heavily overlapping objects: lots of contested pairs
        return rng.integers(0, 5, size=shape)
    lab = np.zeros(shape, dtype=np.int64)
    for k in range(1, rng.integers(1, 5) + 1):
        lo = [rng.integers(0, n) for n in shape]
        hi = [rng.integers(a + 1, n + 1) for a, n in zip(lo, shape)]
        lab[tuple(slice(a, b) for a, b in zip(lo, hi))] = 3 * k + 1  # gaps in ids
    return lab


@pytest.mark.parametrize("kind", ["noise", "boxes"])
def test_matching_agrees_with_brute_force(kind):
    rng = np.random.default_rng(12345)
    thresholds = (0.1, 0.25, 1 / 3, 0.5, 0.7, 1.0)
    for _ in range(40):
        shape = (5, 6) if rng.random() < 0.7 else (2, 3, 4)
        y_true = _random_labels(rng, shape, kind)
        y_pred = _random_labels(rng, shape, kind)
        t_sets, p_sets = _pixel_sets(y_true), _pixel_sets(y_pred)
        ref_iou = _brute_iou(t_sets, p_sets)
        t_ids, p_ids = sorted(t_sets), sorted(p_sets)

        iou = M.iou_matrix(y_true, y_pred)
        expected = np.array([[ref_iou[(i, j)] for j in p_ids] for i in t_ids])
        np.testing.assert_allclose(iou, expected.reshape(iou.shape))

        ap = M.average_precision(y_true, y_pred, thresholds)
        for t, ap_t in zip(thresholds, ap):
            count, total = _brute_best_matching(t_ids, p_ids, ref_iou, t)
            s = M.matching(y_true, y_pred, threshold=t)
            assert s["tp"] == count
            assert s["fp"] == len(p_ids) - count
            assert s["fn"] == len(t_ids) - count
            denom = len(t_ids) + len(p_ids) - count  # TP + FP + FN
            assert ap_t == pytest.approx(count / denom if denom else 1.0)
            assert s["average_precision"] == pytest.approx(ap_t)
            if count:
                assert s["mean_matched_iou"] == pytest.approx(total / count)
                # the reported pairs are one-to-one and all reach the threshold
                assert len(set(s["matched_pred_ids"].tolist())) == count
                assert np.all(s["matched_iou"] >= t)
        assert M.seg_score(y_true, y_pred) == pytest.approx(_brute_seg(t_sets, p_sets))


# --------------------------------------------------------------------------
# invariances, 3D, identities
# --------------------------------------------------------------------------

def _relabel(labels, mapping):
    lut = np.zeros(labels.max() + 1, dtype=np.int64)
    for old, new in mapping.items():
        lut[old] = new
    return lut[labels]


def test_scores_invariant_to_id_permutation_and_gaps():
    rng = np.random.default_rng(7)
    y_true = _random_labels(rng, (12, 12), "noise")
    y_pred = _random_labels(rng, (12, 12), "noise")
    base = M.evaluate(y_true, y_pred)
    base_ap = M.average_precision(y_true, y_pred, (0.2, 0.5))

    ids = np.arange(1, 5)
    gappy_true = _relabel(y_true, dict(zip(ids, rng.permutation([3, 40, 17, 900]))))
    gappy_pred = _relabel(y_pred, dict(zip(ids, rng.permutation([1000, 2, 55, 7]))))
    # very large ids take the np.unique path instead of a lookup table
    huge_true = np.where(y_true > 0, y_true * 2**40 + 11, 0)
    variants = [
        (gappy_true, gappy_pred),
        (huge_true, gappy_pred),
        (gappy_true.astype(np.uint16), gappy_pred.astype(np.uint32)),
        (y_pred, y_true),  # swapped roles: only fp/fn and the sign flip
    ]
    for a, b in variants[:3]:
        assert M.evaluate(a, b) == pytest.approx(base)
        np.testing.assert_allclose(M.average_precision(a, b, (0.2, 0.5)), base_ap)
    swapped = M.evaluate(*variants[3])
    assert (swapped["fp"], swapped["fn"]) == (base["fn"], base["fp"])
    assert swapped["count_error"] == -base["count_error"]
    for key in ("iou", "dice", "pq", "sq", "rq", "ap50", "ap75", "ap90"):
        assert swapped[key] == pytest.approx(base[key]), key


def test_labels_without_background_and_huge_ids():
    # every pixel labelled: with huge ids the np.unique path must still keep
    # index 0 for background
    y_true = np.array([[1, 1, 2, 2], [1, 1, 2, 2]])
    y_pred = np.array([[1, 1, 1, 2], [1, 1, 1, 2]])
    big = np.uint64(2**62)
    expected = M.evaluate(y_true, y_pred)
    got = M.evaluate(y_true.astype(np.uint64) + big, y_pred.astype(np.uint64) * big)
    assert got == pytest.approx(expected)
    # hand check: IoU(1,1) = 4/6, IoU(2,2) = 2/4, IoU(2,1) = 2/8
    np.testing.assert_allclose(
        M.iou_matrix(y_true, y_pred), [[4 / 6, 0.0], [2 / 8, 2 / 4]]
    )


def test_3d_hand_case():
    # true 1: [:, :2, :2] = 8 voxels; true 2: [:, 2, 2] = 2 voxels
    # pred 1: [0, :2, :2] = 4 voxels (IoU 4/8); pred 9: [:, 2, 2] (IoU 1)
    y_true = np.zeros((2, 3, 3), dtype=np.int32)
    y_true[:, :2, :2] = 1
    y_true[:, 2, 2] = 2
    y_pred = np.zeros_like(y_true)
    y_pred[0, :2, :2] = 1
    y_pred[:, 2, 2] = 9
    s = M.matching(y_true, y_pred, threshold=0.5)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 0, 0)
    assert s["mean_matched_iou"] == pytest.approx(0.75)  # (1/2 + 1) / 2
    np.testing.assert_allclose(M.average_precision(y_true, y_pred, 0.75), [1 / 3])
    # SEG: pred 1 covers exactly half of true 1 -> 0; true 2 -> 1
    assert M.seg_score(y_true, y_pred) == pytest.approx(0.5)
    # foreground: 10 true, 6 pred, 6 shared voxels
    assert M.foreground_iou(y_true, y_pred) == pytest.approx(6 / 10)
    assert M.foreground_dice(y_true, y_pred) == pytest.approx(12 / 16)


def test_single_slice_volume_equals_2d():
    assert M.evaluate(Y_TRUE[None], Y_PRED[None]) == pytest.approx(M.evaluate(Y_TRUE, Y_PRED))


def test_perfect_prediction_scores_one():
    rng = np.random.default_rng(3)
    y_true = _random_labels(rng, (10, 10), "noise")
    y_pred = _relabel(y_true, {1: 8, 2: 3, 3: 100, 4: 5})
    e = M.evaluate(y_true, y_pred)
    for key in ("iou", "dice", "pq", "sq", "rq", "ap50", "ap75", "ap90", "seg",
                "mean_matched_iou"):
        assert e[key] == pytest.approx(1.0), key
    n = len(np.unique(y_true)) - 1
    assert (e["tp"], e["fp"], e["fn"], e["count_error"]) == (n, 0, 0, 0)
    np.testing.assert_allclose(M.average_precision(y_true, y_pred, (0.5, 1.0)), [1, 1])


def test_pq_identity_and_score_consistency():
    rng = np.random.default_rng(11)
    for _ in range(10):
        y_true = _random_labels(rng, (8, 8), "boxes")
        y_pred = _random_labels(rng, (8, 8), "boxes")
        for t in (0.3, 0.5):
            pq, sq, rq = M.panoptic_quality(y_true, y_pred, threshold=t)
            assert pq == pytest.approx(sq * rq)
            s = M.matching(y_true, y_pred, threshold=t)
            tp, fp, fn = s["tp"], s["fp"], s["fn"]
            if tp:
                assert rq == pytest.approx(tp / (tp + fp / 2 + fn / 2))
                assert sq == pytest.approx(s["matched_iou"].mean())
                assert M.mean_matched_iou(y_true, y_pred, t) == pytest.approx(sq)
        j = M.foreground_iou(y_true, y_pred)
        assert M.foreground_dice(y_true, y_pred) == pytest.approx(2 * j / (1 + j))


# --------------------------------------------------------------------------
# SEG
# --------------------------------------------------------------------------

def test_seg_half_coverage_is_not_a_match():
    y_true = np.array([[1, 1, 1, 1, 0, 0, 0, 0, 0, 0]])
    # exactly half of the 4 px covered: not > 0.5 |R| -> 0
    assert M.seg_score(y_true, np.array([[1, 1, 0, 0, 0, 0, 0, 0, 0, 0]])) == 0.0
    # 3 of 4 px covered: J = 3 / 4
    assert M.seg_score(y_true, np.array([[1, 1, 1, 0, 0, 0, 0, 0, 0, 0]])) == pytest.approx(0.75)
    # a large prediction covering all of R matches although IoU = 4/10 < 0.5
    big = np.ones((1, 10), dtype=int)
    assert M.seg_score(y_true, big) == pytest.approx(0.4)
    assert M.matching(y_true, big)["tp"] == 0
    # SEG ignores extra predicted objects
    extra = np.array([[1, 1, 1, 0, 0, 2, 0, 3, 0, 4]])
    assert M.seg_score(y_true, extra) == pytest.approx(0.75)


# --------------------------------------------------------------------------
# empty images
# --------------------------------------------------------------------------

SCORE_KEYS = ("iou", "dice", "pq", "sq", "rq", "ap50", "ap75", "ap90", "seg",
              "mean_matched_iou")


def test_both_empty_is_perfect():
    z = np.zeros((4, 5), dtype=np.uint8)
    e = M.evaluate(z, z)
    assert all(e[k] == 1.0 for k in SCORE_KEYS)
    assert (e["tp"], e["fp"], e["fn"], e["count_error"]) == (0, 0, 0, 0)
    s = M.matching(z, z)
    assert all(s[k] == 1.0 for k in ("precision", "recall", "f1", "average_precision"))
    assert M.iou_matrix(z, z).shape == (0, 0)
    np.testing.assert_array_equal(M.average_precision(z, z), [1.0, 1.0, 1.0])
    assert M.panoptic_quality(z, z) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("empty_side", ["true", "pred"])
def test_one_side_empty_scores_zero(empty_side):
    labels = np.array([[1, 1, 0, 2], [0, 0, 0, 2]])
    z = np.zeros_like(labels)
    y_true, y_pred = (z, labels) if empty_side == "true" else (labels, z)
    e = M.evaluate(y_true, y_pred)
    assert all(e[k] == 0.0 for k in SCORE_KEYS)
    assert not any(np.isnan(e[k]) for k in SCORE_KEYS)
    expected_fp, expected_fn = (2, 0) if empty_side == "true" else (0, 2)
    assert (e["tp"], e["fp"], e["fn"]) == (0, expected_fp, expected_fn)
    assert e["count_error"] == expected_fp - expected_fn
    s = M.matching(y_true, y_pred)
    assert all(s[k] == 0.0 for k in ("precision", "recall", "f1", "average_precision"))
    assert M.iou_matrix(y_true, y_pred).shape == ((0, 2) if empty_side == "true" else (2, 0))


def test_objects_without_any_match_give_zero_mean_iou():
    y_true = np.array([[1, 1, 0, 0]])
    y_pred = np.array([[0, 0, 2, 2]])
    assert M.mean_matched_iou(y_true, y_pred) == 0.0
    assert M.panoptic_quality(y_true, y_pred) == (0.0, 0.0, 0.0)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

ALL_PAIR_FUNCTIONS = [
    M.iou_matrix, M.matching, M.average_precision, M.panoptic_quality, M.seg_score,
    M.foreground_iou, M.foreground_dice, M.mean_matched_iou, M.count_error, M.evaluate,
]


@pytest.mark.parametrize("func", ALL_PAIR_FUNCTIONS)
def test_bad_label_inputs_raise(func):
    good = np.array([[0, 1], [1, 2]])
    with pytest.raises(TypeError, match="y_true"):
        func(good.astype(float), good)
    with pytest.raises(TypeError, match="y_pred"):
        func(good, good.astype(np.float32))
    with pytest.raises(ValueError, match="same shape"):
        func(good, np.zeros((2, 3), dtype=int))
    with pytest.raises(ValueError, match="negative"):
        func(good, -good)
    with pytest.raises(ValueError, match="y_true"):
        func(np.array([0, 1, 1]), np.array([0, 1, 1]))  # 1D


@pytest.mark.parametrize("bad", [0, 0.0, 1.5, -0.2, float("nan")])
def test_bad_threshold_raises_value_error(bad):
    y = np.array([[0, 1], [1, 2]])
    for func in (M.matching, M.panoptic_quality, M.mean_matched_iou):
        with pytest.raises(ValueError, match="threshold"):
            func(y, y, threshold=bad)
    with pytest.raises(ValueError, match="thresholds"):
        M.average_precision(y, y, thresholds=(0.5, bad))


def test_bad_threshold_types_and_shapes():
    y = np.array([[0, 1], [1, 2]])
    with pytest.raises(TypeError, match="threshold"):
        M.matching(y, y, threshold="0.5")
    with pytest.raises(ValueError, match="at least one"):
        M.average_precision(y, y, thresholds=[])
    with pytest.raises(ValueError, match="1-D"):
        M.average_precision(y, y, thresholds=[[0.5, 0.7]])


def test_scalar_threshold_gives_one_element_array():
    ap = M.average_precision(Y_TRUE, Y_PRED, thresholds=0.5)
    assert isinstance(ap, np.ndarray) and ap.shape == (1,)
    assert ap[0] == pytest.approx(2 / 5)
    assert M.average_precision(Y_TRUE, Y_PRED, thresholds=np.float32(0.5)).shape == (1,)
