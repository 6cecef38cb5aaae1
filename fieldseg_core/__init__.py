"""fieldseg_core: field representations for cell instance segmentation.

The package behind the *fieldseg* book. Submodules are imported on demand so
that ``import fieldseg_core`` stays cheap (torch is only loaded by the modules
that need it):

- :mod:`fieldseg_core.fields` -- per-cell scalar fields (Poisson, diffusion, EDT, SDF)
- :mod:`fieldseg_core.segment` -- fields to instances (watershed)
- :mod:`fieldseg_core.synthetic` -- seeded synthetic cells and microscope images
- :mod:`fieldseg_core.metrics` -- instance and semantic segmentation scores
- :mod:`fieldseg_core.viz` -- plotly and matplotlib figures
- :mod:`fieldseg_core.flows` -- vector fields (centroid, Cellpose heat, EDT, truncated SDF)
- :mod:`fieldseg_core.dynamics` -- pixel dynamics and clustering (sinks, exact fast DBSCAN)
- :mod:`fieldseg_core.studies` -- the synthetic benchmark and sensitivity studies
  (``python -m fieldseg_core.reproduce``)
- :mod:`fieldseg_core.models`, :mod:`fieldseg_core.losses` -- U-Nets and their losses
- :mod:`fieldseg_core.data`, :mod:`fieldseg_core.train`, :mod:`fieldseg_core.predict` --
  synthetic training data, the trainer (``python -m fieldseg_core.train``), inference
- :mod:`fieldseg_core.datasets` -- real annotated nuclei (read offline from StarDist) and their split
- :mod:`fieldseg_core.pretrained` -- shipped pretrained models, checked by SHA-256
- :mod:`fieldseg_core.transfer` -- few-shot fine-tuning and a human-in-the-loop round
- :mod:`fieldseg_core.cli` -- the ``fieldseg`` command (segment, train, reproduce)
- :mod:`fieldseg_core.distributed`, :mod:`fieldseg_core.chunked` -- scaling up: data-parallel
  training under ``torchrun``, segmentation of images larger than memory with dask
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "fields",
    "segment",
    "synthetic",
    "metrics",
    "viz",
    "flows",
    "dynamics",
    "studies",
    "models",
    "losses",
    "data",
    "train",
    "predict",
    "reproduce",
    "datasets",
    "pretrained",
    "transfer",
    "cli",
    "distributed",
    "chunked",
)

__all__ = list(_SUBMODULES) + ["__version__"]


def __getattr__(name):
    # Lazy submodule access: ``fieldseg_core.fields`` works without an explicit import.
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
