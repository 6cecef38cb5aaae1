"""Compact relabelling of integer ids: the one home for id look-up tables.

Label images may carry ids far larger than the number of cells (``2**40`` in
an image of ten cells). Anything sized by the largest id -- a
``np.bincount``, a look-up table, :func:`scipy.ndimage.find_objects` -- then
allocates gigabytes. Public functions therefore relabel once at their
boundary with :func:`compact_labels`, work on ids ``1..n`` and, where their
output carries ids, map back with the returned ``ids``.
"""

from __future__ import annotations

import numpy as np


def compact_ids(values):
    """Sorted distinct values and each value's position among them.

    Equivalent to ``np.unique(values, return_inverse=True)`` (with the
    inverse raveled), but a ``bincount`` look-up table -- O(n), no sort -- is
    used when the largest value is small compared with the number of values.

    Parameters
    ----------
    values : ndarray of non-negative int
        Any shape.

    Returns
    -------
    ids : ndarray, shape (k,)
        The distinct values in increasing order, in ``values``' dtype.
    inverse : ndarray of intp, shape (values.size,)
        ``ids[inverse] == values.ravel()``.

    Examples
    --------
    >>> import numpy as np
    >>> ids, inverse = compact_ids(np.array([7, 2**40, 7, 0]))
    >>> ids.tolist(), inverse.tolist()
    ([0, 7, 1099511627776], [1, 2, 1, 0])
    """
    flat = np.asarray(values).ravel()
    if flat.size and int(flat.max()) < 4 * flat.size + 1024:
        present = np.bincount(flat.astype(np.intp, copy=False)) > 0
        lookup = np.cumsum(present, dtype=np.intp) - 1
        return np.flatnonzero(present).astype(flat.dtype), lookup[flat]
    ids, inverse = np.unique(flat, return_inverse=True)
    return ids, inverse.ravel().astype(np.intp, copy=False)


def compact_labels(labels):
    """Renumber the cells of a label image ``1..n``, keeping their order.

    Parameters
    ----------
    labels : ndarray of non-negative int
        Label image, 0 = background, ids may have gaps and be huge.

    Returns
    -------
    compact : ndarray of int32 (int64 beyond 2**31 - 1 cells), same shape
        Cell ``k`` (1-based) is the ``k``-th smallest id; 0 stays background.
    ids : ndarray, shape (n,)
        ``ids[k - 1]`` is the original id of compact cell ``k``; the original
        image is ``np.concatenate([[0], ids])[compact]``.

    Examples
    --------
    >>> import numpy as np
    >>> compact, ids = compact_labels(np.array([[0, 2**40, 5], [5, 0, 0]]))
    >>> compact.tolist(), ids.tolist()
    ([[0, 2, 1], [1, 0, 0]], [5, 1099511627776])
    """
    labels = np.asarray(labels)
    ids, inverse = compact_ids(labels)
    if ids.size and ids[0] == 0:
        ids = ids[1:]
    else:
        inverse = inverse + 1  # no background pixel: cell k must still be k
    dtype = np.int32 if ids.size < np.iinfo(np.int32).max else np.int64
    return inverse.astype(dtype, copy=False).reshape(labels.shape), ids


def bounded_ids(labels):
    """``labels`` itself when its largest id is of the order of its size, else :func:`compact_labels`.

    For functions that need ids only to be compared or to index tables: a
    table of ``max id + 1`` entries is then at most about four times the
    image, and the common case costs no copy.

    Examples
    --------
    >>> import numpy as np
    >>> small = np.array([[0, 3, 3, 9]])
    >>> bounded_ids(small) is small, bounded_ids(small + 2**40).tolist()
    (True, [[1, 2, 2, 3]])
    """
    labels = np.asarray(labels)
    if labels.size == 0 or int(labels.max()) < 4 * labels.size + 1024:
        return labels
    return compact_labels(labels)[0]


def restore_ids(compact, ids):
    """Inverse of :func:`compact_labels`: the original ids of a compact label image."""
    table = np.concatenate([np.zeros(1, dtype=ids.dtype), ids])
    return table[compact]
