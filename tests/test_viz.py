"""Tests of fieldseg_core.viz helpers that return data (figures are checked in the book)."""

import numpy as np
import pytest

from fieldseg_core import viz


def test_table_formats_floats_bools_and_non_finite():
    md = viz.table(["a", "b", "c"], [[0.12345, True, np.nan], ["x|y", False, 2]], floatfmt=".2f").data
    assert md.splitlines() == ["| a | b | c |", "|---|---|---|",
                               "| 0.12 | yes | — |", "| x\\|y | no | 2 |"]


def test_table_rejects_ragged_rows():
    with pytest.raises(ValueError, match=r"rows\[1\]"):
        viz.table(["a", "b"], [[1, 2], [3]])
