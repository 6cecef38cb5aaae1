"""Small pretrained models shipped with the package, checked by SHA-256.

- :func:`available` -- names of the shipped models.
- :func:`info` -- what is recorded beside a model: the command that made it,
  its settings, training history summary, size and hash.
- :func:`load` -- a shipped model by name (hash verified) or any checkpoint
  written by :func:`fieldseg_core.train.train`, loaded with
  ``torch.load(..., weights_only=True)``.
- ``python -m fieldseg_core.pretrained rebuild NAME --out DIR`` re-runs the
  recorded command and reports the new file's hash.

Every model was trained on the synthetic cells of
:class:`fieldseg_core.data.SyntheticCells` by one command of
``python -m fieldseg_core.train`` with ``--seed 0`` on a CPU; its folder
``fieldseg_core/pretrained_models/<name>/`` holds ``checkpoint.pt`` (exactly
the file the command wrote), ``history.csv`` and ``model.json`` (command,
configuration, SHA-256, size, final evaluation). The hashes are also
fixed in :data:`REGISTRY`, so a checkpoint altered on disk is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

__all__ = ["REGISTRY", "MODEL_DIR", "available", "info", "sha256", "load", "main"]

#: Folder of the shipped models (package data).
MODEL_DIR = Path(__file__).resolve().parent / "pretrained_models"

#: name -> SHA-256 of its ``checkpoint.pt``.
REGISTRY = {
    "flows_unet": "835353aa57f0cd6c9bfa8c17eed258718192c3b5583adb1446f9983c832fb237",
    "poisson_unet": "878dc96e8a7b8695ee787a196bb540fc5a176c450680a736ca2d1d4a5aa761af",
}


def available():
    """Names of the pretrained models shipped with the package.

    Returns
    -------
    names : list of str
        Sorted; each is accepted by :func:`load`.

    Examples
    --------
    >>> "flows_unet" in available()
    True
    """
    return sorted(REGISTRY)


def _validate_name(name):
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in REGISTRY:
        raise ValueError(f"name must be one of the pretrained models {available()}, got {name!r}")
    return name


def info(name):
    """The record kept beside a pretrained model.

    Parameters
    ----------
    name : str
        One of :func:`available`.

    Returns
    -------
    record : dict
        ``name``, ``command`` (the ``python -m fieldseg_core.train ...`` line
        that wrote the checkpoint), ``model_config``, ``train_config``,
        ``sha256``, ``bytes``, ``final`` (last history row: training loss and
        the evaluation scores on held-out synthetic images) and
        ``description``.

    Examples
    --------
    >>> info("flows_unet")["command"].startswith("python -m fieldseg_core.train")
    True
    """
    _validate_name(name)
    with open(MODEL_DIR / name / "model.json") as f:
        return json.load(f)


def sha256(path):
    """SHA-256 hex digest of a file.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    digest : str
        64 hexadecimal characters.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load(name_or_path, device="cpu", expected_sha256=None):
    """Load a pretrained model by name, or a training checkpoint by path.

    Parameters
    ----------
    name_or_path : str or Path
        A name from :func:`available`, or a ``checkpoint.pt`` written by
        :func:`fieldseg_core.train.train` with a ``model_config`` (as the
        training command writes), or the folder holding one.
    device : str or torch.device
        Where to put the model.
    expected_sha256 : str, optional
        Hash a checkpoint given by path must have. For a name the
        registered hash is always checked.

    Returns
    -------
    model : fieldseg_core.models.FieldModel
        In eval mode; ``model.pretrained_name`` holds the name (or the path).

    Raises
    ------
    ValueError
        Unknown name, missing file, a hash that does not match (a corrupted
        or altered file), or a checkpoint without ``model_config``.

    Notes
    -----
    The file is read with ``torch.load(path, weights_only=True)``: only
    tensors and plain containers are unpickled, never arbitrary objects.

    Examples
    --------
    >>> model = load("flows_unet")
    >>> model.representation, model.training
    ('flows', False)
    """
    import torch

    from .models import build_model

    if isinstance(name_or_path, str) and name_or_path in REGISTRY:
        path = MODEL_DIR / name_or_path / "checkpoint.pt"
        expected_sha256 = REGISTRY[name_or_path]
    elif isinstance(name_or_path, (str, Path)):
        path = Path(name_or_path)
        if path.is_dir():
            path = path / "checkpoint.pt"
        if not path.is_file():
            raise ValueError(f"name_or_path must be one of the pretrained models {available()} or "
                             f"a checkpoint file, got {str(name_or_path)!r}")
    else:
        raise TypeError(f"name_or_path must be a str or Path, got {type(name_or_path).__name__}")
    if expected_sha256 is not None:
        digest = sha256(path)
        if digest != expected_sha256:
            raise ValueError(f"checkpoint {path} has SHA-256 {digest}, expected {expected_sha256}: "
                             "the file is corrupted or was altered; reinstall the package or "
                             "rebuild it with python -m fieldseg_core.pretrained rebuild")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:                       # pickle, zip or torch errors alike
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from None
    if not isinstance(state, dict) or not state.get("model_config") or "model" not in state:
        raise ValueError(f"{path} is not a checkpoint of fieldseg_core.train with a model_config")
    model = build_model(**state["model_config"])
    model.load_state_dict(state["model"])
    model.pretrained_name = str(name_or_path)
    model.model_config = dict(state["model_config"])
    return model.to(device).eval()


# --------------------------------------------------------------------------
# rebuilding a shipped model
# --------------------------------------------------------------------------

def _command_args(command):
    """The argument list after ``python -m fieldseg_core.train``."""
    parts = shlex.split(command)
    prefix = ["python", "-m", "fieldseg_core.train"]
    if parts[:3] != prefix:
        raise ValueError(f"recorded command must start with {' '.join(prefix)!r}, got {command!r}")
    return parts[3:]


def rebuild(name, out):
    """Re-run the recorded command of a model into ``out``; return the new checkpoint's hash.

    The command's ``--out`` is replaced by ``out``. On the same CPU type and
    torch version the new ``checkpoint.pt`` weights equal the shipped ones;
    the hash also covers timings stored in the history, so it differs.
    """
    record = info(name)
    args = _command_args(record["command"])
    i = args.index("--out")
    args[i + 1] = str(out)
    subprocess.run([sys.executable, "-m", "fieldseg_core.train", *args], check=True)
    return sha256(Path(out) / "checkpoint.pt")


def main(argv=None):
    """``python -m fieldseg_core.pretrained {list,rebuild}``."""
    p = argparse.ArgumentParser(prog="python -m fieldseg_core.pretrained",
                                description="List or rebuild the shipped pretrained models.")
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("list", help="names, sizes, hashes and commands")
    r = sub.add_parser("rebuild", help="re-run the recorded training command of a model")
    r.add_argument("name", choices=available())
    r.add_argument("--out", required=True)
    args = p.parse_args(argv)
    if args.action == "list":
        for name in available():
            rec = info(name)
            print(f"{name}  {rec['bytes'] / 1e6:.2f} MB  sha256 {rec['sha256']}\n    {rec['command']}")
    else:
        print(rebuild(args.name, args.out))


if __name__ == "__main__":
    main()
