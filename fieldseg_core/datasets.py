"""Real annotated nuclei, read offline from the StarDist package, and a fixed split.

- :func:`nuclei_2d` -- a 512 x 512 fluorescence image of nuclei from the 2018
  Data Science Bowl with its 125 annotated nuclei (Caicedo et al., 2019;
  BBBC038, Ljosa et al., 2012), the test image StarDist ships (Schmidt et
  al., 2018).
- :func:`nuclei_3d` -- StarDist's 3D example, a *synthetic* stack of nuclei.
- :func:`nuclei_2d_split` -- the 2D image cut into 16 crops of 128 x 128 with
  a fixed, documented assignment to training, validation and test, so every
  chapter scores on the same held-out cells.
- :func:`normalize_percentile` -- intensities mapped so that two percentiles
  become 0 and 1, as for every real image the package segments.

Data and licences
-----------------
The image and masks are the ``stardist/data/images/img2d.tif`` /
``mask2d.tif`` (and ``img3d.tif`` / ``mask3d.tif``) files inside the
``stardist`` Python package (BSD-3-Clause licence), installed with the
environment (``requirements.txt`` pins ``stardist``). The 2D image comes
from the 2018 Data Science Bowl training set, distributed as BBBC038 of the
Broad Bioimage Benchmark Collection under CC0. Nothing is downloaded: the
files are located with :func:`importlib.util.find_spec` and read with
``tifffile``, without importing ``stardist`` itself (whose package imports
numba and CSBDeep, and whose models need TensorFlow; none of that is needed to
read two TIFF files).

References
----------
.. [1] J. C. Caicedo et al., "Nucleus segmentation across imaging
   experiments: the 2018 Data Science Bowl", Nature Methods 16, 2019.
.. [2] V. Ljosa, K. L. Sokolnicki, A. E. Carpenter, "Annotated
   high-throughput microscopy image sets for validation", Nature Methods 9, 2012.
.. [3] U. Schmidt, M. Weigert, C. Broaddus, G. Myers, "Cell detection with
   star-convex polygons", MICCAI 2018.
"""

from __future__ import annotations

import importlib.util
from collections import namedtuple
from pathlib import Path

import numpy as np

from ._validate import validate_field, validate_number

__all__ = [
    "NUCLEI_2D_LICENCE",
    "CROP",
    "SPLIT",
    "Crop",
    "stardist_data_dir",
    "nuclei_2d",
    "nuclei_3d",
    "normalize_percentile",
    "nuclei_2d_split",
]

#: One line of attribution for figures and outputs that use the 2D image.
NUCLEI_2D_LICENCE = ("Nuclei: 2018 Data Science Bowl (BBBC038, CC0), as shipped in the "
                     "StarDist package (BSD-3-Clause)")

#: Side of the square crops of :func:`nuclei_2d_split`.
CROP = 128

#: Grid positions (row, column) of the 4 x 4 crops of the 512 x 512 image in
#: each part of the split. Chosen by hand once, before any model was scored:
#: every part has crops from all four quadrants; the training crops are
#: listed in the order few-shot runs draw them from.
SPLIT = {
    "train": ((0, 0), (2, 3), (1, 2), (3, 0), (0, 2), (2, 1), (1, 0), (3, 2)),
    "val": ((0, 3), (1, 1)),
    "test": ((0, 1), (1, 3), (2, 0), (2, 2), (3, 1), (3, 3)),
}

#: A crop of the 2D image: ``image`` (float32, normalised), ``labels`` (int32,
#: ids 1..n), ``box`` ((row0, row1), (col0, col1)) in the full image.
Crop = namedtuple("Crop", ["image", "labels", "box"])


def stardist_data_dir():
    """Folder of the example images inside the installed ``stardist`` package.

    Returns
    -------
    path : pathlib.Path

    Raises
    ------
    ModuleNotFoundError
        If ``stardist`` is not installed, with the command that installs it.

    Notes
    -----
    The package is located without being imported.
    """
    spec = importlib.util.find_spec("stardist")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the real nuclei images are read from the 'stardist' package, which is not "
            "installed; install it with: pip install stardist==0.9.2 "
            "(it is listed in requirements.txt and environment.yml)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "images"
    if not path.is_dir():
        raise FileNotFoundError(f"the installed stardist package has no example images at {path}; "
                                "reinstall it with: pip install --force-reinstall stardist==0.9.2")
    return path


def _read_pair(stem):
    try:
        import tifffile
    except ModuleNotFoundError:
        raise ModuleNotFoundError("reading the nuclei images needs tifffile: "
                                  "pip install tifffile") from None
    from skimage.segmentation import relabel_sequential

    folder = stardist_data_dir()
    image = tifffile.imread(folder / f"img{stem}.tif")
    labels = tifffile.imread(folder / f"mask{stem}.tif")
    # the stored ids have gaps (up to 183 for 125 nuclei); keep their order, close the gaps
    return image, relabel_sequential(labels)[0].astype(np.int32)


def nuclei_2d():
    """The real 2D nuclei image and its annotation.

    Returns
    -------
    image : ndarray of uint16, shape (512, 512)
        Fluorescence intensities as stored (values 0-235 in this image).
    labels : ndarray of int32, shape (512, 512)
        125 annotated nuclei, ids 1..125 (the stored ids, which have gaps,
        renumbered in their order), 0 on background.

    Notes
    -----
    Data Science Bowl 2018 stage-1 training image (BBBC038, CC0), as
    shipped in the StarDist package (BSD-3-Clause); see the module docstring.

    References
    ----------
    .. [1] Caicedo et al., 2019; Ljosa et al., 2012; Schmidt et al., 2018.

    Examples
    --------
    >>> image, labels = nuclei_2d()
    >>> image.shape, int(labels.max()), len(np.unique(labels)) - 1
    ((512, 512), 125, 125)
    """
    return _read_pair("2d")


def nuclei_3d():
    """StarDist's 3D example: a synthetic stack of nuclei and its labels.

    Returns
    -------
    image : ndarray of uint16, shape (31, 61, 57)
        A *synthetic* volume (not a microscope acquisition), ``(Z, Y, X)``.
    labels : ndarray of int32, same shape
        51 nuclei, ids 1..51, 0 on background.

    Examples
    --------
    >>> image, labels = nuclei_3d()
    >>> image.shape, len(np.unique(labels)) - 1
    ((31, 61, 57), 51)
    """
    return _read_pair("3d")


def normalize_percentile(image, low=1.0, high=99.8, axis=None):
    """Map intensities so that the ``low`` and ``high`` percentiles become 0 and 1.

    Parameters
    ----------
    image : array_like
        Real-valued image (any dimension).
    low, high : float
        Percentiles, ``0 <= low < high <= 100``.
    axis : int or tuple of int, optional
        Axes over which the percentiles are taken (e.g. the spatial axes of a
        multi-channel image); default all.

    Returns
    -------
    normalised : ndarray of float32
        ``(image - p_low) / (p_high - p_low)``, not clipped (bright outliers
        stay above 1, as in CSBDeep's ``normalize``).

    Raises
    ------
    ValueError
        If the image is constant between the two percentiles (nothing to
        segment), or not finite.

    Examples
    --------
    >>> x = np.arange(101.0)
    >>> y = normalize_percentile(x, 10, 90)
    >>> float(y[10]), float(y[90])
    (0.0, 1.0)
    """
    image = validate_field(image, "image", ndims=tuple(range(1, 6)))
    low = validate_number(low, "low", low=0.0, high=100.0)
    high = validate_number(high, "high", low=0.0, high=100.0)
    if not low < high:
        raise ValueError(f"low must be smaller than high, got low={low}, high={high}")
    lo, hi = np.percentile(image, [low, high], axis=axis, keepdims=True)
    span = hi - lo
    if np.any(span <= 0):
        raise ValueError("image is constant between its low and high percentiles (an empty "
                         "or constant image?); there is nothing to segment")
    return ((image - lo) / span).astype(np.float32)


def nuclei_2d_split(part=None):
    """The fixed split of :func:`nuclei_2d` into 128 x 128 crops.

    Parameters
    ----------
    part : {"train", "val", "test"}, optional
        One part; default all three in a dict.

    Returns
    -------
    crops : list of Crop, or dict of such lists
        For each grid position of :data:`SPLIT` (in that order) the crop of the
        image normalised by :func:`normalize_percentile` (1st and 99.8th
        percentiles of the *whole* image, so all crops share one intensity
        scale), its labels renumbered 1..n in raster order, and its box.

    Notes
    -----
    The image is cut into a 4 x 4 grid: 8 training, 2 validation and 6 test
    crops (:data:`SPLIT`). A nucleus cut by a crop border appears in each crop
    as the part inside it, in the annotation and in any prediction made on
    the crop alike. The split is a constant of the package, not drawn at run
    time.

    Examples
    --------
    >>> split = nuclei_2d_split()
    >>> {k: len(v) for k, v in split.items()}
    {'train': 8, 'val': 2, 'test': 6}
    >>> split["test"][0].image.shape, split["test"][0].box
    ((128, 128), ((0, 128), (128, 256)))
    """
    from skimage.segmentation import relabel_sequential

    if part is not None and part not in SPLIT:
        raise ValueError(f"part must be one of {tuple(SPLIT)} or None, got {part!r}")
    image, labels = nuclei_2d()
    image = normalize_percentile(image)
    out = {}
    for name, cells in SPLIT.items():
        if part is not None and name != part:
            continue
        crops = []
        for r, c in cells:
            rows, cols = (r * CROP, (r + 1) * CROP), (c * CROP, (c + 1) * CROP)
            lab = labels[rows[0]:rows[1], cols[0]:cols[1]]
            lab = relabel_sequential(lab)[0].astype(np.int32)
            crops.append(Crop(np.ascontiguousarray(image[rows[0]:rows[1], cols[0]:cols[1]]),
                              lab, (rows, cols)))
        out[name] = crops
    return out[part] if part is not None else out
