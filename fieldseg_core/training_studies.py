"""Reproductions of the papers' training claims (models trained on synthetic scenes).

Each entry of :data:`REPRODUCTIONS` is picked up by ``python -m fieldseg_core.reproduce``.

Contract of an entry ``REPRODUCTIONS[study_id] = (description, run)``:
``run(out, quick, seeds, device)`` trains and evaluates, and returns ``(rows, fig)``:
``rows`` is a list of dicts with at least the keys ``study``, ``quantity``,
``paper`` (the paper's value, or ``None``), ``ours_mean``, ``ours_spread``,
``n_seeds``, ``reproduced`` (bool, from criteria stated in the code) and
``reason`` (one line); ``fig`` is a matplotlib figure (or ``None``).
``reproduce`` writes ``<out>/<study_id>.csv`` and ``<out>/<study_id>.png``.
"""

#: study id -> (one-line description, run function); see the module docstring.
REPRODUCTIONS = {}
