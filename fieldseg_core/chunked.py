"""Segmentation of images larger than memory: dask blocks with margins, then one global relabelling.

A whole-slide image or a light-sheet volume does not fit in memory together
with its fields, flows and the intermediates of their post-processing. This
module splits the image into blocks of ``chunk_size`` pixels with
:mod:`dask.array`, segments every block together with a margin of ``margin``
pixels borrowed from its neighbours (:func:`dask.array.overlap.overlap`, the
machinery of :func:`dask.array.map_overlap`), keeps each block's labels in its
own (core) region, and merges the pieces of a cell that block borders cut:
two neighbouring blocks both segment the strip of width ``2 * margin`` around
their common face, and labels that overlap there with an intersection over
union above ``iou_threshold`` are the same cell. A connected-components pass
over these matches (:func:`scipy.sparse.csgraph.connected_components`) gives
every cell one global label.

- :func:`segment_chunked` -- the pipeline: numpy, dask, zarr or memory-mapped
  TIFF in; numpy, zarr (``<stem>_labels.zarr``) or TIFF out.
- :func:`open_image` -- a path or array as a lazily read dask array.
- :func:`synthetic_mosaic` -- a large field (and its true labels) written to
  zarr strip by strip, to try all this on images of any size.

Peak memory depends on the block size and the number of worker threads, not
on the image size; the scheduler is dask's (threads by default).

References
----------
.. [1] M. Rocklin, "Dask: parallel computation with blocked algorithms and task
   scheduling", Proc. 14th Python in Science Conference (SciPy), 2015.
"""

from __future__ import annotations

import numbers
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from ._validate import validate_number

__all__ = ["open_image", "segment_chunked", "labels_path", "synthetic_mosaic"]

SCALAR_REPRESENTATIONS = ("poisson", "diffusion", "edt", "sdf")
_ID_STRIDE = np.int64(2**32)  # block-local ids live in [k * 2**32, (k + 1) * 2**32)


# --------------------------------------------------------------------------
# input and output
# --------------------------------------------------------------------------

def _is_pathlike(x):
    return isinstance(x, (str, Path))


def open_image(image, chunks=None):
    """A 2D/3D image (or channel-first stack) as a dask array, read lazily.

    Parameters
    ----------
    image : array, dask array, zarr array, or str / Path
        A path ending in ``.zarr`` (a zarr array), ``.tif`` / ``.tiff``
        (memory-mapped when uncompressed, read through tifffile's zarr view
        otherwise), or any array.
    chunks : int or tuple, optional
        Passed to :func:`dask.array.from_array` (default: the store's chunks,
        or ``"auto"``).

    Returns
    -------
    array : dask.array.Array

    Examples
    --------
    >>> import numpy as np
    >>> open_image(np.zeros((6, 8)), chunks=4).chunks
    ((4, 2), (4, 4))
    """
    import dask.array as da

    if isinstance(image, da.Array):
        return image if chunks is None else image.rechunk(chunks)
    if _is_pathlike(image):
        path = Path(image)
        if not path.exists():
            raise ValueError(f"image must be an existing .zarr or .tif path, got {str(path)!r}")
        suffix = path.suffix.lower()
        if suffix == ".zarr":
            import zarr

            image = zarr.open_array(str(path), mode="r")
        elif suffix in (".tif", ".tiff"):
            import tifffile

            try:
                image = tifffile.memmap(str(path), mode="r")
            except ValueError:  # compressed or tiled: read tiles through a zarr store
                import zarr

                image = zarr.open_array(tifffile.imread(str(path), aszarr=True), mode="r")
        else:
            raise ValueError(f"image must be a .zarr or .tif/.tiff path, got {str(path)!r}")
    elif not hasattr(image, "shape") or not hasattr(image, "dtype"):
        image = np.asarray(image)
    if chunks is None:
        chunks = getattr(image, "chunks", None) or "auto"
        if not isinstance(chunks, (tuple, str)):
            chunks = "auto"
    return da.from_array(image, chunks=chunks)


def labels_path(image, out):
    """Where :func:`segment_chunked` writes: ``out`` itself, or ``out/<stem>_labels.zarr``.

    Parameters
    ----------
    image : str, Path or array
        The input; a path's name without its suffix is the stem (``"image"``
        for arrays).
    out : str or Path
        A path ending in ``.zarr``, ``.tif`` or ``.tiff`` is used as is; any
        other path is a directory.

    Returns
    -------
    path : Path

    Examples
    --------
    >>> labels_path("data/slide.zarr", "results").as_posix()
    'results/slide_labels.zarr'
    >>> labels_path("data/stack.tif", "out/cells.tif").as_posix()
    'out/cells.tif'
    """
    out = Path(out)
    if out.suffix.lower() in (".zarr", ".tif", ".tiff"):
        return out
    stem = Path(image).stem if _is_pathlike(image) else "image"
    return out / f"{stem}_labels.zarr"


def _create_output(path, shape, chunks, dtype, overwrite):
    if path.exists():
        if not overwrite:
            raise ValueError(f"out {str(path)!r} exists; pass overwrite=True to replace it")
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".zarr":
        import zarr

        return zarr.create_array(store=str(path), shape=shape, chunks=chunks, dtype=dtype,
                                 fill_value=0)
    import tifffile

    return tifffile.memmap(str(path), shape=shape, dtype=dtype)


# --------------------------------------------------------------------------
# per-block segmentation
# --------------------------------------------------------------------------

def _block_function(segmenter, device, params):
    """``fn(block) -> labels`` for the three kinds of segmenter."""
    # A model can only be a torch module if torch is loaded; fields never import it.
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(segmenter, torch.nn.Module):
        from .predict import predict_instances

        segmenter.eval()

        def fn(block):
            return predict_instances(segmenter, block, device=device, **params)
        return fn
    if isinstance(segmenter, str):
        from .predict import _flow_instances, _sdf_instances
        from .segment import watershed_from_field

        if segmenter == "flows":
            return lambda block: _flow_instances(block, **params)
        if segmenter == "sdf":
            return lambda block: _sdf_instances(block, **params)
        if segmenter in SCALAR_REPRESENTATIONS:
            return lambda block: watershed_from_field(block, **params)
        raise ValueError(f"segmenter must be a representation in "
                         f"{SCALAR_REPRESENTATIONS + ('flows',)}, a torch model or a callable, "
                         f"got {segmenter!r}")
    if callable(segmenter):
        if params:
            return lambda block: segmenter(block, **params)
        return segmenter
    raise TypeError(f"segmenter must be a representation name, a torch.nn.Module or a "
                    f"callable, got {type(segmenter).__name__}")


def _segment_block(block, fn, grid, spatial_shape, block_id=None):
    labels = np.asarray(fn(block))
    if labels.shape != spatial_shape(block):
        raise ValueError(f"segmenter must return labels of the block's spatial shape "
                         f"{spatial_shape(block)}, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise ValueError("segmenter must return non-negative integer labels")
    if labels.size and labels.max() >= _ID_STRIDE:
        raise ValueError("a block holds more than 2**32 labels")
    k = np.int64(np.ravel_multi_index(block_id[-len(grid):], grid))
    return np.where(labels > 0, labels.astype(np.int64) + k * _ID_STRIDE, 0)


# --------------------------------------------------------------------------
# merging
# --------------------------------------------------------------------------

def _take(block, region):
    return block[region].copy()  # a copy, so the block itself can be released


def _face_matches(a, b, iou_threshold):
    """Pairs ``(id_a, id_b)`` whose IoU within the shared strip exceeds ``iou_threshold``."""
    a, b = a.ravel(), b.ravel()
    ids_a, inv_a, size_a = np.unique(a, return_inverse=True, return_counts=True)
    ids_b, inv_b, size_b = np.unique(b, return_inverse=True, return_counts=True)
    both = (a > 0) & (b > 0)
    codes, inter = np.unique(inv_a[both].astype(np.int64) * len(ids_b) + inv_b[both],
                             return_counts=True)
    ia, ib = np.divmod(codes, len(ids_b))
    iou = inter / (size_a[ia] + size_b[ib] - inter)
    keep = iou > iou_threshold
    return np.stack([ids_a[ia[keep]], ids_b[ib[keep]]])


def _owned_ids(core):
    ids = np.unique(core)
    return ids[ids > 0]


def _merge_table(owned, matches):
    """Sorted block ids and their global labels ``1..n`` (pieces of one cell share one)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ids = np.sort(np.concatenate([np.zeros(0, np.int64)] + list(owned)))
    pairs = np.concatenate([np.zeros((2, 0), np.int64)] + list(matches), axis=1)
    # Only pieces that appear in some block's core carry labels to the output.
    pairs = pairs[:, np.isin(pairs[0], ids) & np.isin(pairs[1], ids)]
    ia, ib = np.searchsorted(ids, pairs[0]), np.searchsorted(ids, pairs[1])
    graph = coo_matrix((np.ones(len(ia), np.int8), (ia, ib)), shape=(len(ids), len(ids)))
    n, component = connected_components(graph, directed=False)
    if n >= 2**31:
        raise ValueError("more than 2**31 - 1 cells do not fit the int32 output")
    return ids, (component + 1).astype(np.int32)


def _apply_table(block, ids, new):
    out = np.zeros(block.shape, np.int32)
    fg = block > 0
    out[fg] = new[np.searchsorted(ids, block[fg])]
    return out


def _sequential_pieces(owned):
    """Global labels without merging: every block's piece its own label (to show the seams)."""
    ids = np.sort(np.concatenate([np.zeros(0, np.int64)] + list(owned)))
    return ids, np.arange(1, len(ids) + 1, dtype=np.int32)


# --------------------------------------------------------------------------
# the pipeline
# --------------------------------------------------------------------------

def _axis_chunks(length, size, margin):
    # Regular chunks; a last chunk narrower than the margin joins its neighbour
    # (dask's overlap needs every chunk to supply a full margin).
    q, r = divmod(length, size)
    sizes = [size] * q + ([r] if r else [])
    if len(sizes) > 1 and 0 < sizes[-1] < margin:
        last = sizes.pop()
        sizes[-1] += last
    return tuple(sizes)


def _shared_strips(axis_chunks, margin):
    """Face neighbours ``(a, b)`` and the region both segment, in each one's local coordinates."""
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in axis_chunks]
    length = [s[-1] for s in starts]

    def extended(index, k):  # block index's extent along axis k, margins included
        return (max(0, starts[k][index[k]] - margin[k]),
                min(length[k], starts[k][index[k] + 1] + margin[k]))

    numblocks = tuple(len(c) for c in axis_chunks)
    for a in np.ndindex(*numblocks):
        for axis in range(len(numblocks)):
            if a[axis] + 1 >= numblocks[axis] or margin[axis] == 0:
                continue  # no neighbour, or no strip to compare
            b = tuple(i + (k == axis) for k, i in enumerate(a))
            strip_a, strip_b = [], []
            for k in range(len(numblocks)):
                (lo_a, hi_a), (lo_b, hi_b) = extended(a, k), extended(b, k)
                lo, hi = max(lo_a, lo_b), min(hi_a, hi_b)
                strip_a.append(slice(lo - lo_a, hi - lo_a))
                strip_b.append(slice(lo - lo_b, hi - lo_b))
            yield a, b, tuple(strip_a), tuple(strip_b)


def _validate_sizes(value, name, ndim, low):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,) * ndim
    try:
        value = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a tuple of {ndim} ints, "
                        f"got {type(value).__name__}") from None
    if len(value) != ndim:
        raise ValueError(f"{name} must have one entry per spatial axis ({ndim}), got {value!r}")
    return tuple(validate_number(v, name, low=low, integer=True) for v in value)


def segment_chunked(image, out=None, segmenter="poisson", chunk_size=512, margin=48, *,
                    channels_first=None, merge=True, iou_threshold=0.5, scheduler="threads",
                    num_workers=None, device=None, tmp_dir=None, overwrite=False,
                    progress=False, **params):
    """Segment an image block by block with dask and merge cells cut by block borders.

    Parameters
    ----------
    image : array, dask array, zarr array, or str / Path (``.zarr``, ``.tif``)
        The image a model segments, or, for a representation name, the field
        itself (``(M, N[, P])``; ``(C, M, N[, P])`` for ``"flows"``). Read
        lazily (see :func:`open_image`).
    out : str or Path, optional
        Where to write the labels (see :func:`labels_path`): a ``.zarr`` or
        ``.tif`` path, or a directory that receives ``<stem>_labels.zarr``.
        ``None`` returns the labels as an in-memory array.
    segmenter : str, torch.nn.Module or callable
        What segments one block (with its margin):

        - a representation name (``"poisson"``, ``"diffusion"``, ``"edt"``,
          ``"sdf"``, ``"flows"``): ``image`` is that field, post-processed as in
          :func:`fieldseg_core.predict.to_instances` (watershed of the field,
          or :func:`~fieldseg_core.dynamics.masks_from_flows`), in 2D or 3D;
        - a trained model: :func:`fieldseg_core.predict.predict_instances`
          (2D);
        - a callable ``fn(block, **params) -> labels`` of the block's spatial shape.
    chunk_size : int or tuple of int
        Block size per spatial axis (the last block of an axis may be larger,
        by less than ``margin``).
    margin : int or tuple of int
        Context borrowed from each neighbour, ``<= chunk_size``. A cell is
        segmented whole by every block it touches when ``margin`` is at least
        its diameter. For a model add
        :func:`~fieldseg_core.models.receptive_field_margin`, and make
        ``chunk_size`` and ``margin`` multiples of
        :func:`~fieldseg_core.models.downsampling_factor`, so that every block
        starts on the network's pooling grid and its prediction equals the
        whole image's away from the block's outer edge.
    channels_first : bool, optional
        Whether axis 0 of ``image`` holds channels (never split). Default: True
        for ``"flows"``, False otherwise.
    merge : bool
        Merge the pieces of cells cut by block borders (False keeps one label
        per piece, showing the seams).
    iou_threshold : float
        Two pieces from neighbouring blocks are one cell when their IoU over
        the strip both blocks segment exceeds this, in [0.5, 1) (at 0.5 or
        above each piece has at most one match per face).
    scheduler : str or None
        dask scheduler for :func:`dask.compute`: ``"threads"`` (default),
        ``"processes"``, ``"sync"``, or None to use the active
        ``dask.distributed`` client (its workers must see ``out`` and ``tmp_dir``).
    num_workers : int, optional
        Threads or processes of the local schedulers (default: one per core).
    device : str, optional
        For a model: the device it runs on.
    tmp_dir : str or Path, optional
        Where the unmerged block labels (int64) are kept between the two
        passes when ``out`` is given; default: the system's temporary directory.
    overwrite : bool
        Replace an existing ``out``.
    progress : bool
        Show dask's progress bar (local schedulers).
    **params
        Post-processing parameters of the segmenter (``eps``, ``h``, ``n_iter``, ...).

    Returns
    -------
    labels : ndarray of int32 or Path
        The labels (``out=None``), else the path written (a zarr array or a
        TIFF of int32 labels, 0 on background, cells ``1..n``).

    Notes
    -----
    Pass 1 segments every block with its margin (``dask.array.overlap``),
    writes its core labels, offset to block-unique ids, to a temporary zarr
    array, and collects for each pair of face neighbours the pieces whose
    labels agree over their shared strip; each block is segmented once,
    whatever number of consumers its labels feed. The matches form a graph
    whose connected components are the cells, numbered ``1..n`` in block order.
    Pass 2 rewrites the temporary labels through that table. Memory holds a
    few blocks per worker and the table of pieces, never the whole image.

    Blocks agree on a cell that crosses their face when both segment it
    whole, i.e. when ``margin`` exceeds the cell's extent; a cell crossing a
    corner is merged through the faces of the blocks it crosses. Pieces seen
    only in a block's margin carry no label and are not merged.

    For a ``dask.distributed`` cluster, start a client first
    (``from dask.distributed import Client; client = Client("scheduler:8786")``)
    and pass ``scheduler=None``; ``out`` and ``tmp_dir`` must then be on a
    file system every worker sees.

    References
    ----------
    .. [1] M. Rocklin, SciPy 2015 (dask).

    Examples
    --------
    >>> import numpy as np
    >>> from fieldseg_core.fields import poisson_field
    >>> from fieldseg_core.segment import watershed_from_field
    >>> truth = np.zeros((40, 40), dtype=int)
    >>> truth[12:28, 4:20] = 1; truth[12:28, 20:36] = 2   # touching cells on a block border
    >>> field = poisson_field(truth)
    >>> labels = segment_chunked(field, None, "poisson", chunk_size=20, margin=20)
    >>> int(labels.max()), bool((labels == watershed_from_field(field)).all())
    (2, True)
    >>> int(segment_chunked(field, None, "poisson", chunk_size=20, margin=20, merge=False).max())
    4
    """
    import dask
    import dask.array as da

    if channels_first is None:
        channels_first = isinstance(segmenter, str) and segmenter == "flows"
    channels_first = bool(channels_first)
    fn = _block_function(segmenter, device, params)
    iou_threshold = validate_number(iou_threshold, "iou_threshold", low=0.5, high=1.0,
                                    high_inclusive=False)
    if num_workers is not None:
        num_workers = validate_number(num_workers, "num_workers", low=1, integer=True)
    x = open_image(image)
    if not (np.issubdtype(x.dtype, np.number) and not np.issubdtype(x.dtype, np.complexfloating)):
        raise TypeError(f"image must hold real numbers, got dtype {x.dtype}")
    spatial = x.shape[1:] if channels_first else x.shape
    if len(spatial) not in (2, 3) or min(spatial) < 1:
        raise ValueError(f"image must be 2D or 3D{' after its channel axis' * channels_first},"
                         f" got shape {x.shape}")
    ndim = len(spatial)
    chunk_size = _validate_sizes(chunk_size, "chunk_size", ndim, low=1)
    margin = _validate_sizes(margin, "margin", ndim, low=0)
    if any(m > c for m, c in zip(margin, chunk_size)):
        raise ValueError(f"margin must be <= chunk_size, got margin={margin}, "
                         f"chunk_size={chunk_size}")
    axis_chunks = tuple(_axis_chunks(n, c, m) for n, c, m in zip(spatial, chunk_size, margin))
    lead = ((x.shape[0],),) if channels_first else ()
    x = x.rechunk(lead + axis_chunks)
    depth = dict(enumerate(((0,) if channels_first else ()) + margin))
    extended = da.overlap.overlap(x, depth=depth, boundary="none")
    numblocks = tuple(len(c) for c in axis_chunks)
    seg = extended.map_blocks(
        _segment_block, fn=fn, grid=numblocks,
        spatial_shape=(lambda b: b.shape[1:]) if channels_first else (lambda b: b.shape),
        dtype=np.int64, meta=np.empty((0,) * ndim, np.int64),
        drop_axis=0 if channels_first else None,
        chunks=extended.chunks[1:] if channels_first else extended.chunks)
    spatial_depth = dict(enumerate(margin))
    core = da.overlap.trim_internal(seg, spatial_depth, boundary="none")
    assert core.chunks == axis_chunks

    # Delayed handles on the blocks' keys, so every consumer shares one segmentation.
    seg_blocks = seg.to_delayed(optimize_graph=False)
    # Strips are cut out in their own small tasks, so a block's labels can be freed as
    # soon as its core is stored, without waiting for the neighbour across each face.
    take = dask.delayed(_take, pure=True)
    matches = [dask.delayed(_face_matches)(take(seg_blocks[a], strip_a),
                                           take(seg_blocks[b], strip_b), iou_threshold)
               for a, b, strip_a, strip_b in _shared_strips(axis_chunks, margin)] if merge else []
    owned = [dask.delayed(_owned_ids)(block)
             for block in core.to_delayed(optimize_graph=False).ravel()]

    out_path = None if out is None else labels_path(image, out)
    # No graph optimisation: fusing would copy a block's segmentation into each consumer.
    compute_kw = {"scheduler": scheduler, "optimize_graph": False}
    if num_workers is not None and scheduler in ("threads", "processes"):
        compute_kw["num_workers"] = num_workers
    progress_bar = _progress(progress and scheduler is not None)
    tmp = None
    try:
        with progress_bar:
            if out_path is None:
                core_np, owned, matches = dask.compute(core, owned, matches, **compute_kw)
            else:
                import zarr

                tmp = tempfile.mkdtemp(prefix="fieldseg_chunked_", dir=tmp_dir)
                pieces = zarr.create_array(store=str(Path(tmp) / "pieces.zarr"), shape=spatial,
                                           chunks=chunk_size, dtype=np.int64, fill_value=0)
                stored = da.store(core, pieces, lock=False, compute=False)
                _, owned, matches = dask.compute(stored, owned, matches, **compute_kw)
            ids, new = _merge_table(owned, matches) if merge else _sequential_pieces(owned)
            if out_path is None:
                return _apply_table(core_np, ids, new)
            target = _create_output(out_path, spatial, chunk_size, np.int32, overwrite)
            relabelled = da.from_zarr(pieces).map_blocks(_apply_table, ids, new, dtype=np.int32)
            da.store(relabelled, target, lock=False, **compute_kw)
            if hasattr(target, "flush"):
                target.flush()
            return out_path
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _progress(enabled):
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar()


def synthetic_mosaic(shape, out_field, out_labels=None, tile=256, n_distinct=8, n_cells=60,
                     radius_range=(6, 11), seed=0, chunks=512, representation="poisson"):
    """A large 2D mosaic of synthetic cells and their field, written to zarr without holding it.

    Parameters
    ----------
    shape : (int, int)
        Mosaic size in pixels.
    out_field : str or Path
        ``.zarr`` path of the float32 field.
    out_labels : str or Path, optional
        ``.zarr`` path of the int32 true labels (cells numbered across tiles).
    tile : int
        Side of the square tiles the mosaic repeats.
    n_distinct : int
        Distinct tiles drawn with :func:`fieldseg_core.synthetic.random_cells`
        (``kind="mixed"``, overlap 0.3, so some cells touch) and shown under one of the 8 flips and
        quarter turns, so the mosaic does not repeat visibly.
    n_cells : int
        Cells per tile.
    radius_range : (float, float)
        Equivalent radii of the cells, px.
    seed : int
        Seed of the tiles and of their arrangement.
    chunks : int
        zarr chunk side; strips of this height are written one at a time.
    representation : {"poisson", "diffusion", "edt", "sdf"}
        The field of each tile (:func:`fieldseg_core.data.make_target`).

    Returns
    -------
    n_cells : int
        Number of cells in the mosaic.

    Notes
    -----
    Cells never cross tile borders (each tile is segmented in its own right),
    but they cross the borders of any block grid that is not aligned with the tiles.
    """
    import zarr

    from .data import make_target
    from .synthetic import random_cells

    try:
        rows, cols = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise TypeError(f"shape must be a pair of ints, got {shape!r}") from None
    if rows < 1 or cols < 1:
        raise ValueError(f"shape must be positive, got {shape!r}")
    tile = validate_number(tile, "tile", low=8, integer=True)
    n_distinct = validate_number(n_distinct, "n_distinct", low=1, integer=True)
    chunks = validate_number(chunks, "chunks", low=1, integer=True)
    if representation not in SCALAR_REPRESENTATIONS:
        raise ValueError(f"representation must be one of {SCALAR_REPRESENTATIONS}, "
                         f"got {representation!r}")
    rng = np.random.default_rng(seed)
    bank = []
    for _ in range(n_distinct):
        labels = random_cells((tile, tile), n_cells, kind="mixed", radius_range=radius_range,
                              overlap=0.3, seed=int(rng.integers(2**31)), placement="uniform")
        bank.append((labels.astype(np.int32), make_target(labels, representation)[0]))
    field_z = zarr.create_array(store=str(out_field), shape=(rows, cols), chunks=(chunks, chunks),
                                dtype=np.float32, fill_value=0, overwrite=True)
    labels_z = None if out_labels is None else zarr.create_array(
        store=str(out_labels), shape=(rows, cols), chunks=(chunks, chunks), dtype=np.int32,
        fill_value=0, overwrite=True)
    n_tr, n_tc = -(-rows // tile), -(-cols // tile)
    choice = rng.integers(n_distinct, size=(n_tr, n_tc))
    turns, flips = rng.integers(4, size=(n_tr, n_tc)), rng.integers(2, size=(n_tr, n_tc))
    # Tile (i, j) numbers its cells after those of the tiles before it in raster order.
    counts = np.array([int(labels.max()) for labels, _ in bank])[choice]
    offsets = (np.cumsum(counts.ravel()) - counts.ravel()).reshape(n_tr, n_tc)
    present = np.zeros(0, np.int64)
    for r0 in range(0, rows, chunks):
        r1 = min(rows, r0 + chunks)
        out_f = np.zeros((r1 - r0, n_tc * tile), np.float32)
        out_l = np.zeros((r1 - r0, n_tc * tile), np.int32)
        for tr in range(r0 // tile, -(-r1 // tile)):
            lo, hi = max(r0, tr * tile), min(r1, (tr + 1) * tile)
            for tc in range(n_tc):
                labels, field = bank[choice[tr, tc]]
                if flips[tr, tc]:
                    labels, field = labels[::-1], field[::-1]
                labels, field = np.rot90(labels, turns[tr, tc]), np.rot90(field, turns[tr, tc])
                cols_tile = slice(tc * tile, (tc + 1) * tile)
                rows_tile = slice(lo - tr * tile, hi - tr * tile)
                out_f[lo - r0:hi - r0, cols_tile] = field[rows_tile]
                out_l[lo - r0:hi - r0, cols_tile] = np.where(
                    labels[rows_tile] > 0, labels[rows_tile] + offsets[tr, tc], 0)
        field_z[r0:r1] = out_f[:, :cols]
        if labels_z is not None:
            labels_z[r0:r1] = out_l[:, :cols]
        present = np.union1d(present, out_l[:, :cols])
    return int((present > 0).sum())
