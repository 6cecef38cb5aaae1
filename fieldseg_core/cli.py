"""The ``fieldseg`` command: segment your own images, train, reproduce.

- ``fieldseg segment IMAGE [IMAGE ...] --model NAME_OR_CHECKPOINT --out DIR``
  segments 2D TIFF or PNG images (or, with ``--stack``, 3D TIFF stacks slice
  by slice) with a pretrained model
  (:func:`fieldseg_core.pretrained.available`) or a checkpoint of
  ``fieldseg train``, writing ``DIR/<stem>_labels.tif``,
  ``DIR/<stem>_overlay.png`` and ``DIR/<stem>_cells.csv`` per image. Zarr
  inputs, and any input with ``--chunk-size N``, are segmented block by block
  with dask (:func:`segment_large`) into ``DIR/<stem>_labels.zarr``.
- ``fieldseg train ...`` is ``python -m fieldseg_core.train ...``.
- ``fieldseg reproduce ...`` is ``python -m fieldseg_core.reproduce ...``.

From Python: :func:`segment_image` (an array in, labels out) and
:func:`segment_files` (what ``fieldseg segment`` runs).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

__all__ = ["read_image", "segment_image", "segment_large", "segment_files", "cell_table",
           "build_parser", "main"]

_SUFFIXES = (".tif", ".tiff", ".png")


# --------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------

def read_image(path, channel=None, stack=False):
    """Read a 2D image (one channel), or a 3D stack, from a TIFF or PNG file.

    Parameters
    ----------
    path : str or Path
        A ``.tif``/``.tiff`` or ``.png`` file.
    channel : int, optional
        For a multi-channel file, the channel to segment. The channel axis is
        the last one when it has at most 4 entries (RGB(A) PNG, ``(H, W, C)``
        TIFF), else the first (``(C, H, W)`` TIFF).
    stack : bool
        Read a 3D array as a ``(Z, Y, X)`` stack instead (with ``channel``,
        a 4D ``(Z, C, Y, X)`` file: the channel axis is the second).

    Returns
    -------
    image : ndarray, shape (H, W), or (Z, Y, X) with ``stack=True``
        As stored (no normalisation).

    Raises
    ------
    ValueError
        Missing or unreadable file, an unsupported suffix, a multi-channel
        image without ``channel`` (unless its channels are identical), a
        channel out of range, or an array that is not 2D after the channel is
        taken (or 3D with ``stack=True``).

    Examples
    --------
    >>> import tempfile, tifffile
    >>> f = Path(tempfile.mkdtemp()) / "x.tif"
    >>> tifffile.imwrite(f, np.zeros((3, 8, 9), np.uint8), photometric="minisblack")
    >>> read_image(f, channel=1).shape
    (8, 9)
    """
    path = Path(path)
    if path.suffix.lower() not in _SUFFIXES:
        raise ValueError(f"image {str(path)!r}: expected a file ending in {', '.join(_SUFFIXES)}")
    if not path.is_file():
        raise ValueError(f"image {str(path)!r} does not exist or is not a file")
    try:
        if path.suffix.lower() == ".png":
            from PIL import Image

            with Image.open(path) as im:
                array = np.asarray(im)
        else:
            import tifffile

            array = tifffile.imread(path)
    except Exception as exc:                       # any decoder error means unreadable
        raise ValueError(f"image {str(path)!r} could not be read ({type(exc).__name__}: {exc})") \
            from None
    array = np.asarray(array)
    if array.dtype == bool or not (np.issubdtype(array.dtype, np.integer)
                                   or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"image {str(path)!r} has dtype {array.dtype}; expected integer or "
                         "floating-point intensities")
    array = np.squeeze(array)
    if stack:
        return _read_stack(path, array, channel)
    if array.ndim == 3:
        axis = -1 if array.shape[-1] <= 4 else 0
        n = array.shape[axis]
        if channel is None:
            first = np.take(array, 0, axis=axis)
            if axis == -1 and all(np.array_equal(first, np.take(array, k, axis=axis))
                                  for k in range(1, min(n, 3))):
                array = first                      # grey stored as RGB(A)
            else:
                raise ValueError(
                    f"image {str(path)!r} has shape {array.shape}: a multi-channel image "
                    f"({n} channels) or a 3D stack; pass channel (--channel) to pick a "
                    "channel, or stack=True (--stack) to segment a 3D stack slice by slice")
        else:
            if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) \
                    or not 0 <= channel < n:
                raise ValueError(f"channel must be an integer in [0, {n}) for image "
                                 f"{str(path)!r} of shape {array.shape}, got {channel!r}")
            array = np.take(array, int(channel), axis=axis)
    elif channel not in (None, 0):
        raise ValueError(f"channel={channel!r} given, but image {str(path)!r} has a single "
                         f"channel (shape {array.shape})")
    if array.ndim != 2:
        raise ValueError(f"image {str(path)!r} has shape {array.shape}; expected a 2D image "
                         "(H, W), optionally with a channel axis")
    if min(array.shape) < 8:
        raise ValueError(f"image {str(path)!r} of shape {array.shape} is too small "
                         "(at least 8 x 8 pixels)")
    return array


def _read_stack(path, array, channel):
    if path.suffix.lower() == ".png":
        raise ValueError(f"image {str(path)!r}: stacks (stack=True, --stack) are read from 3D "
                         "TIFF files, not PNG")
    if channel is not None:
        if array.ndim != 4:
            raise ValueError(f"image {str(path)!r} has shape {array.shape}; with stack=True and a "
                             "channel, expected a 4D (Z, C, Y, X) stack")
        if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) \
                or not 0 <= channel < array.shape[1]:
            raise ValueError(f"channel must be an integer in [0, {array.shape[1]}) for the "
                             f"(Z, C, Y, X) stack {str(path)!r}, got {channel!r}")
        array = array[:, int(channel)]
    if array.ndim != 3:
        raise ValueError(f"image {str(path)!r} has shape {array.shape}; with stack=True expected "
                         "a 3D (Z, Y, X) stack")
    if min(array.shape[1:]) < 8:
        raise ValueError(f"image {str(path)!r} of shape {array.shape} is too small "
                         "(at least 8 x 8 pixels per slice)")
    return array


# --------------------------------------------------------------------------
# segmenting
# --------------------------------------------------------------------------

def _model(model, device):
    from .pretrained import load

    if isinstance(model, (str, Path)):
        return load(model, device=device)
    import torch

    if not isinstance(model, torch.nn.Module) or not hasattr(model, "representation"):
        raise TypeError("model must be a pretrained name, a checkpoint path or a FieldModel, "
                        f"got {type(model).__name__}")
    return model


def segment_image(image, model="flows_unet", low=1.0, high=99.8, tile=1024, device="cpu",
                  stitch_threshold=0.25, **params):
    """Segment one 2D image (or a 3D stack): percentile normalisation, (tiled) prediction, instances.

    Parameters
    ----------
    image : (H, W) or (Z, Y, X) array
        Intensities, bright cells on a dark background. A 3D stack is
        segmented slice by slice with the 2D model and the slices are linked
        into 3D objects by overlap (:func:`fieldseg_core.dynamics.stitch_3d`,
        Cellpose's stitching mode).
    model : str, Path or FieldModel
        A name of :func:`fieldseg_core.pretrained.available`, a checkpoint
        of ``fieldseg train``, or a loaded model.
    low, high : float
        Percentiles mapped to 0 and 1 (:func:`fieldseg_core.datasets.normalize_percentile`).
    tile : int
        Images larger than this are predicted in tiles of this size, with the
        overlap that makes tiling exact for the package's U-Nets
        (:func:`fieldseg_core.predict.exact_overlap`; 64 px otherwise).
    device : str
        Torch device.
    stitch_threshold : float
        For a stack: the IoU above which a mask continues an object of the
        previous slice.
    **params
        Post-processing parameters of :func:`fieldseg_core.predict.to_instances`.

    Returns
    -------
    labels : ndarray of int32, the shape of ``image``

    Raises
    ------
    ValueError
        An empty or constant image, or one that is neither 2D nor 3D.

    Notes
    -----
    A stack is normalised with the percentiles of the whole stack, so all
    slices share one intensity scale.

    Examples
    --------
    >>> from fieldseg_core.datasets import nuclei_2d
    >>> image, _ = nuclei_2d()
    >>> labels = segment_image(image[:128, :128], "flows_unet")
    >>> labels.shape, labels.dtype.name
    ((128, 128), 'int32')
    """
    from ._validate import validate_field, validate_number
    from .datasets import normalize_percentile
    from .predict import exact_overlap, predict_instances

    image = validate_field(image, "image", ndims=(2, 3))
    tile = validate_number(tile, "tile", low=16, integer=True)
    model = _model(model, device)
    norm = normalize_percentile(image, low, high)
    overlap = exact_overlap(model)
    overlap = 64 if overlap is None else overlap
    use_tiles = max(norm.shape[-2:]) > tile
    if use_tiles and overlap >= tile:
        raise ValueError(f"tile must exceed the model's exact overlap {overlap}, got {tile}")

    def one(plane):
        return predict_instances(model, plane, device=device, tile=tile if use_tiles else None,
                                 overlap=overlap, **params)

    if norm.ndim == 2:
        return one(norm)
    from .dynamics import stitch_3d

    stitch_threshold = validate_number(stitch_threshold, "stitch_threshold", low=0.0,
                                       low_inclusive=False, high=1.0)
    return stitch_3d(np.stack([one(plane) for plane in norm]), iou_threshold=stitch_threshold)


def _percentiles(array, low, high, max_samples=4_000_000):
    """Percentiles of a (lazy) image from an evenly strided subsample of at most ``max_samples``."""
    step = max(1, int(np.ceil((array.size / max_samples) ** (1 / array.ndim))))
    sample = np.asarray(array[tuple(slice(None, None, step) for _ in range(array.ndim))],
                        dtype=np.float64)
    if not np.isfinite(sample).all():
        raise ValueError("image has non-finite values")
    lo, hi = np.percentile(sample, [low, high])
    if not hi > lo:
        raise ValueError("image is constant between its low and high percentiles (an empty "
                         "or constant image has nothing to segment)")
    return float(lo), float(hi)


def _open_large(path):
    from .chunked import open_image

    path = Path(path)
    if not path.exists():
        raise ValueError(f"image {str(path)!r} does not exist")
    try:
        array = open_image(path)
    except Exception as exc:                       # any reader error means unreadable
        raise ValueError(f"image {str(path)!r} could not be read ({type(exc).__name__}: {exc})") \
            from None
    if array.ndim != 2:
        raise ValueError(f"image {str(path)!r} has shape {array.shape}; chunked segmentation "
                         "takes 2D images")
    return array


def _block_geometry(model, chunk_size, margin=None):
    """Checked ``(chunk_size, margin)`` for block-wise prediction with ``model``."""
    from ._validate import validate_number
    from .models import downsampling_factor, receptive_field_margin

    reach = receptive_field_margin(model)
    if reach is None:
        raise ValueError("model: its output depends on the whole input (attention or GroupNorm "
                         "U-Net), so blocks cannot reproduce it; use a U-Net with the default norm")
    grid = downsampling_factor(model)
    chunk_size = validate_number(chunk_size, "chunk_size", low=grid, integer=True)
    if chunk_size % grid:
        raise ValueError(f"chunk_size must be a multiple of the model's pooling factor {grid}, "
                         f"got {chunk_size}")
    if margin is None:
        margin = min(-(-(reach + 64) // grid) * grid, chunk_size)
    margin = validate_number(margin, "margin", low=0, high=chunk_size, integer=True)
    if margin % grid:
        raise ValueError(f"margin must be a multiple of the model's pooling factor {grid}, "
                         f"got {margin}")
    return chunk_size, margin


def segment_large(image, model="flows_unet", out=None, chunk_size=1024, margin=None, low=1.0,
                  high=99.8, device="cpu", overwrite=False, progress=False, **params):
    """Segment a 2D image larger than memory, block by block (dask), into one label image.

    Parameters
    ----------
    image : str, Path or array
        A ``.zarr`` array, a TIFF (memory-mapped when uncompressed) or an array.
    model : str, Path or FieldModel
        As for :func:`segment_image` (a model whose tiles are exact: the
        package's U-Nets).
    out : str or Path, optional
        A folder that receives ``<stem>_labels.zarr`` (or a ``.zarr``/``.tif``
        path); None returns the labels in memory.
    chunk_size : int
        Block side, a multiple of the model's pooling factor
        (:func:`fieldseg_core.models.downsampling_factor`).
    margin : int, optional
        Context each block borrows from its neighbours. Default: the model's
        receptive-field margin plus 64 px for the cells themselves, rounded
        up to the pooling grid, so cells up to 64 px across that cross a block
        border are segmented whole by both blocks and merged.
    low, high : float
        Percentiles mapped to 0 and 1, estimated on an evenly strided
        subsample of at most 4 million pixels.
    device, **params
        As for :func:`segment_image`.
    overwrite : bool
        Replace an existing output.
    progress : bool
        dask's progress bar.

    Returns
    -------
    labels : ndarray of int32 or Path
        The labels (``out=None``) or the path written.

    Notes
    -----
    Blocks are segmented by :func:`fieldseg_core.chunked.segment_chunked`
    with the model's prediction and post-processing, after the same
    percentile normalisation as :func:`segment_image`; the global merge joins
    the pieces of cells cut by block borders.

    Examples
    --------
    >>> from fieldseg_core.datasets import nuclei_2d
    >>> image, _ = nuclei_2d()
    >>> labels = segment_large(image[:192, :192], "flows_unet", chunk_size=96)
    >>> labels.shape, labels.dtype.name
    ((192, 192), 'int32')
    """
    from ._validate import validate_number
    from .chunked import open_image, segment_chunked
    from .predict import predict_instances

    array = _open_large(image) if isinstance(image, (str, Path)) else open_image(image)
    if array.ndim != 2:
        raise ValueError(f"image must be 2D, got shape {array.shape}")
    low = validate_number(low, "low", low=0.0, high=100.0)
    high = validate_number(high, "high", low=0.0, high=100.0)
    if not low < high:
        raise ValueError(f"low must be smaller than high, got low={low}, high={high}")
    lo, hi = _percentiles(array, low, high)
    model = _model(model, device)
    chunk_size, margin = _block_geometry(model, chunk_size, margin)
    model.eval()

    def block_labels(block):
        normalised = ((np.asarray(block, dtype=np.float64) - lo) / (hi - lo)).astype(np.float32)
        return predict_instances(model, normalised, device=device, **params)

    if out is not None and isinstance(image, (str, Path)):
        from .chunked import labels_path

        out = labels_path(image, out)              # named after the input, not "image"
    return segment_chunked(array, out, block_labels, chunk_size=chunk_size, margin=margin,
                           overwrite=overwrite, progress=progress)


def cell_table(labels):
    """Per-cell id, area and centroid of a label image.

    Parameters
    ----------
    labels : (H, W) or (Z, Y, X) array of int

    Returns
    -------
    rows : list of dict
        ``id``, ``area`` (pixels, or voxels for a stack), ``centroid_z``
        (stacks only), ``centroid_y``, ``centroid_x`` (pixels: slice, row and
        column), sorted by id.

    Examples
    --------
    >>> cell_table(np.array([[0, 3, 3], [0, 3, 3]]))
    [{'id': 3, 'area': 4, 'centroid_y': 0.5, 'centroid_x': 1.5}]
    """
    from ._validate import validate_labels

    labels = validate_labels(labels, ndims=(2, 3))
    ids, inverse = np.unique(labels, return_inverse=True)
    inverse = inverse.ravel()
    area = np.bincount(inverse, minlength=len(ids))
    names = ("centroid_z", "centroid_y", "centroid_x")[3 - labels.ndim:]
    centroids = [np.bincount(inverse, coord.ravel(), minlength=len(ids)) / np.maximum(area, 1)
                 for coord in np.indices(labels.shape)]
    rows = []
    for k, (i, a) in enumerate(zip(ids, area)):
        if i != 0:
            row = {"id": int(i), "area": int(a)}
            row.update({n: round(float(c[k]), 3) for n, c in zip(names, centroids)})
            rows.append(row)
    return rows


def _overlay_rgb(image, labels):
    from skimage.segmentation import find_boundaries

    from .datasets import normalize_percentile
    from .viz import label_rgb

    if image.ndim == 3:                            # a stack: its middle slice
        image, labels = image[image.shape[0] // 2], labels[labels.shape[0] // 2]
    grey = np.clip(normalize_percentile(image, 1.0, 99.8), 0.0, 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    colours = label_rgb(labels).astype(np.float32)
    if colours.max() > 1.0:
        colours /= 255.0
    inside = labels > 0
    rgb[inside] = 0.65 * rgb[inside] + 0.35 * colours[inside]
    rgb[find_boundaries(labels, mode="inner")] = (1.0, 1.0, 0.0)
    return (rgb * 255).round().astype(np.uint8)


def _outputs(out_dir, stem):
    return {"labels": out_dir / f"{stem}_labels.tif", "overlay": out_dir / f"{stem}_overlay.png",
            "cells": out_dir / f"{stem}_cells.csv"}


def segment_files(paths, model="flows_unet", out_dir="fieldseg_out", channel=None, low=1.0,
                  high=99.8, tile=1024, device="cpu", progress=True, stack=False,
                  stitch_threshold=0.25, chunk_size=None, **params):
    """Segment image files and write labels, an overlay and a cell table for each.

    Parameters
    ----------
    paths : sequence of str or Path
        TIFF or PNG files (see :func:`read_image`).
    model : str, Path or FieldModel
        As for :func:`segment_image`.
    out_dir : str or Path
        Created if missing. For each input ``<stem>.<ext>`` it receives
        ``<stem>_labels.tif`` (int32 labels, 0 = background),
        ``<stem>_overlay.png`` (image with coloured cells and yellow outlines;
        the middle slice of a stack) and ``<stem>_cells.csv`` (``id, area,
        centroid_y, centroid_x``, and ``centroid_z`` for stacks).
    channel : int, optional
        Channel of multi-channel files.
    stack : bool
        Read 3D files as ``(Z, Y, X)`` stacks, segmented slice by slice and
        stitched (see :func:`segment_image`).
    stitch_threshold : float
        IoU linking masks of consecutive slices of a stack.
    low, high, tile, device, **params
        As for :func:`segment_image`.
    progress : bool
        A progress bar over the inputs (on stderr).
    chunk_size : int, optional
        Segment every input block by block with this block size
        (:func:`segment_large`), writing only ``<stem>_labels.zarr``. Zarr
        inputs (``.zarr`` folders) always take this path (default block 1024).

    Returns
    -------
    results : list of dict
        Per input: ``input``, ``n_cells``, ``labels`` (the array) and the
        written paths ``labels_path``, ``overlay_path``, ``cells_path``; for a
        chunked input only ``input``, ``n_cells`` and ``labels_path`` (the zarr array).

    Raises
    ------
    ValueError
        Before anything is written, if any input is missing, unreadable, not
        2D, empty or constant, if two inputs share a stem, or if an output
        file would overwrite an input.

    Notes
    -----
    Every input is read and checked before the model runs, and files are
    written only once all images are segmented, so a bad input anywhere
    leaves ``out_dir`` untouched.
    """
    import tifffile
    from PIL import Image
    from tqdm.auto import tqdm

    from .datasets import normalize_percentile

    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise ValueError("paths must name at least one image")
    out_dir = Path(out_dir)
    # 1. check everything before writing anything
    stems = {}
    inputs = {p.resolve() for p in paths}
    for p in paths:
        if p.stem in stems:
            raise ValueError(f"inputs {str(stems[p.stem])!r} and {str(p)!r} share the stem "
                             f"{p.stem!r}; their outputs in out_dir would collide")
        stems[p.stem] = p
        for target in _outputs(out_dir, p.stem).values():
            if target.resolve() in inputs:
                raise ValueError(f"out_dir {str(out_dir)!r}: writing {str(target)!r} would "
                                 "overwrite an input image; choose another output folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {str(out_dir)!r} exists and is not a folder")
    chunked = {p for p in paths if chunk_size is not None or p.suffix.lower() == ".zarr"}
    if chunked and (stack or channel is not None):
        raise ValueError("chunked segmentation (zarr inputs, chunk_size) takes single-channel 2D "
                         "images: drop stack and channel")
    for p in paths:
        if p in chunked:
            target = out_dir / f"{p.stem}_labels.zarr"
            if target.resolve() in inputs:
                raise ValueError(f"out_dir {str(out_dir)!r}: writing {str(target)!r} would "
                                 "overwrite an input image; choose another output folder")
            if target.exists():
                raise ValueError(f"{str(target)!r} exists; remove it or choose another out_dir")
            try:
                _percentiles(_open_large(p), low, high)
            except ValueError as exc:
                raise ValueError(f"image {str(p)!r}: {exc}") from None
            continue
        image = read_image(p, channel, stack)
        try:
            normalize_percentile(image, low, high)
        except ValueError as exc:
            raise ValueError(f"image {str(p)!r}: {exc}") from None
    model = _model(model, device)
    if chunked:
        _block_geometry(model, chunk_size or 1024)
    # 2. segment (chunked inputs write their zarr labels as they go: they never fit in memory)
    results = []
    for p in tqdm(paths, desc="segmenting", unit="image", disable=not progress, file=sys.stderr):
        if p in chunked:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = segment_large(p, model, out_dir, chunk_size=chunk_size or 1024, low=low,
                                 high=high, device=device, **params)
            from .chunked import open_image

            n_cells = int(open_image(path).max().compute())   # ids are 1..n after the merge
            results.append({"input": str(p), "labels_path": str(path), "n_cells": n_cells})
            continue
        image = read_image(p, channel, stack)
        labels = segment_image(image, model, low=low, high=high, tile=tile, device=device,
                               stitch_threshold=stitch_threshold, **params)
        results.append({"input": str(p), "image": image, "labels": labels,
                        "n_cells": int(len(np.unique(labels)) - 1)})
    # 3. write
    out_dir.mkdir(parents=True, exist_ok=True)
    for res in results:
        if "image" not in res:                     # chunked: already written
            continue
        image = res.pop("image")
        out = _outputs(out_dir, Path(res["input"]).stem)
        tifffile.imwrite(out["labels"], res["labels"].astype(np.int32))
        Image.fromarray(_overlay_rgb(image, res["labels"])).save(out["overlay"])
        with open(out["cells"], "w", newline="") as f:
            columns = ["id", "area"] + ["centroid_z"] * (image.ndim == 3) + ["centroid_y",
                                                                             "centroid_x"]
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(cell_table(res["labels"]))
        res.update({f"{k}_path": str(v) for k, v in out.items()})
    return results


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------

def build_parser():
    """The ``fieldseg`` argument parser (subcommands segment, train, reproduce)."""
    p = argparse.ArgumentParser(
        prog="fieldseg",
        description="Field representations for cell instance segmentation: segment your own "
                    "images, train models, reproduce the book's studies.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("segment", help="segment TIFF/PNG images with a pretrained model",
                       description="Segment 2D TIFF or PNG images; writes <stem>_labels.tif, "
                                   "<stem>_overlay.png and <stem>_cells.csv into --out.")
    s.add_argument("images", nargs="+", help="TIFF, PNG or zarr (chunked) images")
    s.add_argument("--model", default="flows_unet",
                   help="a pretrained model name (see --list-models) or a checkpoint.pt "
                        "(default: flows_unet)")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--channel", type=int, default=None,
                   help="channel of multi-channel images (0-based)")
    s.add_argument("--stack", action="store_true",
                   help="read 3D TIFFs as (Z, Y, X) stacks: segment every slice and link the "
                        "slices by overlap")
    s.add_argument("--stitch-threshold", type=float, default=0.25,
                   help="IoU that links masks of consecutive slices of a stack (default 0.25)")
    s.add_argument("--low", type=float, default=1.0, help="low percentile mapped to 0")
    s.add_argument("--high", type=float, default=99.8, help="high percentile mapped to 1")
    s.add_argument("--tile", type=int, default=1024,
                   help="predict images larger than this in exact overlapping tiles")
    s.add_argument("--chunk-size", type=int, default=None,
                   help="segment block by block with dask (images larger than memory), writing "
                        "<stem>_labels.zarr; zarr inputs always are (default block 1024)")
    s.add_argument("--device", default="cpu", help="torch device (default cpu)")
    s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    for name, module in (("train", "train"), ("reproduce", "reproduce")):
        t = sub.add_parser(name, add_help=False,
                           help=f"same as python -m fieldseg_core.{module} (see fieldseg {name} "
                                "--help)")
        t.add_argument("args", nargs=argparse.REMAINDER)
    return p


def main(argv=None):
    """Entry point of the ``fieldseg`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    result
        What the subcommand returns (``segment``: the list of
        :func:`segment_files`).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("train", "reproduce"):
        import importlib

        module = importlib.import_module(f"fieldseg_core.{argv[0]}")
        return module.main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        results = segment_files(args.images, model=args.model, out_dir=args.out,
                                channel=args.channel, low=args.low, high=args.high,
                                tile=args.tile, device=args.device,
                                progress=not args.no_progress, stack=args.stack,
                                stitch_threshold=args.stitch_threshold,
                                chunk_size=args.chunk_size)
    except (ValueError, TypeError, ModuleNotFoundError) as exc:
        print(f"fieldseg segment: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for res in results:
        print(f"{res['input']}: {res['n_cells']} cells -> {res['labels_path']}")
    return results


if __name__ == "__main__":
    main()
