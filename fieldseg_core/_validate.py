"""Input validation shared by the public functions of :mod:`fieldseg_core`.

Every helper names the offending argument in its error message so that a user
can tell at once which input was wrong and what was expected.
"""

from __future__ import annotations

import numbers

import numpy as np

#: The field representations a target, a model and a loss can be built for.
REPRESENTATIONS = ("poisson", "diffusion", "edt", "flows", "sdf")


def as_array(value):
    """``np.asarray``, also for torch tensors (detached and moved to the CPU first).

    A tensor that requires grad cannot go through ``np.asarray``; the
    post-processing functions only read values, so they take a detached copy.
    """
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = value.detach().cpu()
        if value.dtype.is_floating_point and value.element_size() < 4:
            value = value.float()  # numpy has no bfloat16
        return value.numpy()
    return np.asarray(value)


def validate_labels(labels, name="labels", ndims=(2, 3)):
    """Check an integer label image and return it as a numpy array.

    Parameters
    ----------
    labels : array_like
        Label image: 0 is background, positive integers are cell ids (gaps allowed).
    name : str
        Argument name used in error messages.
    ndims : tuple of int
        Allowed numbers of dimensions.

    Returns
    -------
    labels : ndarray
        The input as an integer ndarray (not copied when already one).

    Raises
    ------
    TypeError
        If the array is not of an integer (or boolean) dtype.
    ValueError
        If it is empty, has a disallowed number of dimensions or negative ids.
    """
    arr = as_array(labels)
    if arr.dtype == bool:
        arr = arr.astype(np.int32)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} must be an integer label array (0 = background), got dtype {arr.dtype}"
        )
    if arr.ndim not in ndims:
        allowed = " or ".join(f"{d}D" for d in ndims)
        raise ValueError(f"{name} must be a {allowed} array, got {arr.ndim}D with shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if arr.min() < 0:
        raise ValueError(f"{name} must not contain negative ids, found minimum {arr.min()}")
    return arr


def validate_field(field, name="field", ndims=(2, 3)):
    """Check a real-valued, finite N-D field and return it as a float ndarray.

    Torch tensors are accepted (a detached CPU copy is used).
    """
    arr = as_array(field)
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be a real-valued array, got dtype {arr.dtype}")
    if arr.ndim not in ndims:
        allowed = " or ".join(f"{d}D" for d in ndims)
        raise ValueError(f"{name} must be a {allowed} array, got {arr.ndim}D with shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; it contains NaN or infinite values")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def validate_same_shape(a, b, name_a, name_b):
    """Raise ValueError unless ``a`` and ``b`` have the same shape."""
    if np.shape(a) != np.shape(b):
        raise ValueError(
            f"{name_a} and {name_b} must have the same shape, got {np.shape(a)} and {np.shape(b)}"
        )


def validate_number(value, name, *, low=None, high=None, low_inclusive=True,
                    high_inclusive=True, integer=False):
    """Check a real scalar lies in a range and return it as float (or int).

    Parameters
    ----------
    value : object
        The value to check.
    name : str
        Argument name used in error messages.
    low, high : float, optional
        Bounds of the allowed interval (``None`` = unbounded).
    low_inclusive, high_inclusive : bool
        Whether the bounds themselves are allowed.
    integer : bool
        Require an integer and return ``int``.
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a real number"
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    if not integer and not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low is not None and (value < low or (value == low and not low_inclusive)):
        bound = ">=" if low_inclusive else ">"
        raise ValueError(f"{name} must be {bound} {low}, got {value!r}")
    if high is not None and (value > high or (value == high and not high_inclusive)):
        bound = "<=" if high_inclusive else "<"
        raise ValueError(f"{name} must be {bound} {high}, got {value!r}")
    return int(value) if integer else float(value)


def validate_mask(mask, shape, name="mask"):
    """Check an optional boolean mask matching ``shape``; return a bool array or None."""
    if mask is None:
        return None
    arr = as_array(mask)
    if arr.dtype != bool:
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"{name} must be a boolean array, got dtype {arr.dtype}")
        arr = arr != 0
    if arr.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {arr.shape}")
    return arr


def resolve_device(device, name="device"):
    """A :class:`torch.device` from ``None`` (CUDA when available, else CPU), a string or a device.

    Raises
    ------
    TypeError
        If ``device`` is neither None, a string nor a torch.device.
    ValueError
        If the string names no torch device, or names CUDA on a machine without it.
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"{name} must be None, a string or a torch.device, "
                        f"got {type(device).__name__}")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{name} must name a torch device such as 'cpu' or 'cuda', "
                         f"got {device!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{name} is {str(device)!r} but CUDA is not available on this machine")
    return device


def validate_representation(representation, name="representation"):
    """Return ``representation`` if it is one of :data:`REPRESENTATIONS`, else raise ValueError."""
    if not isinstance(representation, str) or representation not in REPRESENTATIONS:
        raise ValueError(f"{name} must be one of {REPRESENTATIONS}, got {representation!r}")
    return representation
