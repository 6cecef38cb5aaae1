"""Real nuclei read offline from the stardist package; the fixed split; the classical baseline."""

import importlib.util
import socket

import numpy as np
import pytest

from fieldseg_core.datasets import (
    CROP,
    SPLIT,
    normalize_percentile,
    nuclei_2d,
    nuclei_2d_split,
    nuclei_3d,
)
from fieldseg_core.metrics import evaluate
from fieldseg_core.segment import otsu_watershed


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_nuclei_2d_has_125_nuclei_matching_the_image(offline):
    image, labels = nuclei_2d()
    assert image.shape == labels.shape == (512, 512)
    ids = np.unique(labels)
    np.testing.assert_array_equal(ids, np.arange(126))          # 0 and 1..125
    # nuclei are bright: every nucleus is brighter on average than the background
    bg = image[labels == 0].mean()
    means = np.bincount(labels.ravel(), image.ravel().astype(float)) / np.bincount(labels.ravel())
    assert (means[1:] > bg).mean() > 0.95
    # each nucleus is one connected piece of plausible size
    areas = np.bincount(labels.ravel())[1:]
    assert areas.min() > 10 and areas.max() < 2000


def test_nuclei_3d_is_the_synthetic_stack(offline):
    image, labels = nuclei_3d()
    assert image.shape == labels.shape == (31, 61, 57)
    assert len(np.unique(labels)) - 1 == 51


def test_stardist_is_not_imported(offline):
    import sys

    sys.modules.pop("stardist", None)
    nuclei_2d()
    assert "stardist" not in sys.modules


def test_missing_stardist_names_the_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "stardist" else real(name, *a))
    with pytest.raises(ModuleNotFoundError, match="pip install stardist"):
        nuclei_2d()


def test_split_is_disjoint_stable_and_covers_the_image():
    positions = [p for part in SPLIT.values() for p in part]
    assert len(positions) == len(set(positions)) == (512 // CROP) ** 2
    assert SPLIT["test"] == ((0, 1), (1, 3), (2, 0), (2, 2), (3, 1), (3, 3))
    a, b = nuclei_2d_split(), nuclei_2d_split()
    image, labels = nuclei_2d()
    norm = normalize_percentile(image)
    for part in SPLIT:
        for (r, c), ca, cb in zip(SPLIT[part], a[part], b[part]):
            (r0, r1), (c0, c1) = ca.box
            assert (r0, c0) == (r * CROP, c * CROP) and (r1 - r0, c1 - c0) == (CROP, CROP)
            np.testing.assert_array_equal(ca.image, cb.image)
            np.testing.assert_array_equal(ca.labels, cb.labels)
            np.testing.assert_array_equal(ca.image, norm[r0:r1, c0:c1])
            # same partition as the annotation, ids renumbered 1..n
            orig = labels[r0:r1, c0:c1]
            assert len(np.unique(ca.labels)) == len(np.unique(orig))
            assert np.array_equal(ca.labels > 0, orig > 0)
            assert ca.labels.max() == len(np.unique(ca.labels)) - 1
    # no pixel of a test crop is in a training crop
    boxes = {part: {c.box for c in a[part]} for part in SPLIT}
    assert not boxes["test"] & boxes["train"] and not boxes["val"] & boxes["train"]
    assert nuclei_2d_split("val")[0].box == a["val"][0].box
    with pytest.raises(ValueError, match="part"):
        nuclei_2d_split("holdout")


def test_normalize_percentile():
    x = np.arange(1001.0).reshape(7, 11, 13)[:1001 // 1001 * 7]
    y = normalize_percentile(x, 0, 100)
    assert y.min() == 0 and y.max() == 1 and y.dtype == np.float32
    img = np.random.default_rng(0).random((3, 20, 20)) * [[[1]], [[10]], [[100]]]
    per = normalize_percentile(img, 1, 99, axis=(1, 2))
    for k in range(3):
        np.testing.assert_allclose(np.percentile(per[k], [1, 99]), [0, 1], atol=1e-5)
    with pytest.raises(ValueError, match="constant"):
        normalize_percentile(np.full((8, 8), 3.0))
    with pytest.raises(ValueError, match="low"):
        normalize_percentile(x, 50, 10)


def test_otsu_watershed_separates_touching_disks_and_beats_chance_on_real_nuclei():
    yy, xx = np.mgrid[:60, :90]
    truth = np.zeros((60, 90), np.int32)
    centres = [(30, 25), (30, 44), (30, 70)]              # first two touch
    for k, (cy, cx) in enumerate(centres, 1):
        truth[(yy - cy) ** 2 + (xx - cx) ** 2 < 11 ** 2] = k
    image = (truth > 0) * 1.0 + np.random.default_rng(0).normal(0, 0.05, truth.shape)
    pred = otsu_watershed(image)
    scores = evaluate(truth, pred)
    assert pred.max() == 3 and scores["ap75"] == 1.0
    assert otsu_watershed(np.zeros((20, 20))).max() == 0
    image, labels = nuclei_2d()
    assert evaluate(labels, otsu_watershed(normalize_percentile(image)))["ap50"] > 0.4
    with pytest.raises(ValueError, match="min_distance"):
        otsu_watershed(image, min_distance=0)
