"""The student edition (`make student`, tools/student.py).

Convention: cells tagged ``solution`` (markdown dropdowns or code) are removed;
code cells tagged ``exercise`` keep their leading comments and raise
NotImplementedError. Checked here: the transformation itself; that no student
notebook still shows a solution; and that every student notebook runs on a fresh
kernel up to its first stub (which raises NotImplementedError, nothing earlier
fails) or to the end when the chapter has no exercise code cell. nbval checks
the full notebooks.
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest

from minibook import ROOT, TOOLS

sys.path.insert(0, str(TOOLS))
from student import EXERCISE, SOLUTION, student_notebook, stub_source, write_student_edition  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("[0-9]*.ipynb"))
SOLUTION_TEXT = re.compile(r"[`:]{3,}\s*\{dropdown\}\s*Solution", re.I)


def _cell(kind, source, tags=()):
    cell = {"cell_type": kind, "metadata": {"tags": list(tags)} if tags else {}, "source": source}
    if kind == "code":
        cell.update(outputs=[{"output_type": "stream", "name": "stdout", "text": "x"}], execution_count=3)
    return cell


def test_student_notebook_removes_solutions_and_stubs_exercises():
    nb = {"cells": [
        _cell("code", "x = 1"),
        _cell("markdown", "```{admonition} Exercise 3.2\nCompute y.\n```"),
        _cell("code", "# Compute y from x.\n# Hint: double it.\n\ny = 2 * x\nprint(y)", [EXERCISE, "hide-input"]),
        _cell("markdown", "````{dropdown} Solution\nDouble it.\n````", [SOLUTION]),
        _cell("code", "print('solution code')", [SOLUTION]),
        _cell("code", "z = 3"),
    ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    before = json.dumps(nb)
    out, removed, stubbed = student_notebook(nb)
    assert json.dumps(nb) == before, "the input notebook must not change"
    assert (removed, stubbed) == (2, 1)
    assert [c["source"] for c in out["cells"]][0] == "x = 1"
    stub = out["cells"][2]["source"]
    assert stub.startswith("# Compute y from x.\n# Hint: double it.\n")
    assert "y = 2 * x" not in stub and "raise NotImplementedError" in stub and "Exercise 3.2" in stub
    assert out["cells"][2]["metadata"]["tags"] == [EXERCISE]
    assert all(c.get("outputs", []) == [] for c in out["cells"])
    assert not any(SOLUTION in c.get("metadata", {}).get("tags", []) for c in out["cells"])
    with pytest.raises(NotImplementedError):
        exec(compile(stub, "stub", "exec"), {})


def test_stub_without_comments_is_just_the_raise():
    assert stub_source("y = 1\n").startswith("# YOUR CODE HERE\nraise NotImplementedError")


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    write_student_edition(ROOT / "book", out)
    return out


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_student_notebook_shows_no_solution(student_dir, path):
    nb = json.loads((student_dir / path.name).read_text())
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        assert SOLUTION not in tags
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        assert not SOLUTION_TEXT.search(source), (
            f"{path.name}: a solution dropdown is left in a cell without the '{SOLUTION}' tag "
            f"(put each solution in its own cell tagged '{SOLUTION}'): {source[:120]!r}")
        if EXERCISE in tags:
            assert cell["cell_type"] == "code", f"{path.name}: only code cells can be '{EXERCISE}' cells"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_full_notebook_tags_are_consistent(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        tags = set(cell.get("metadata", {}).get("tags", []))
        assert not {SOLUTION, EXERCISE} <= tags, f"{path.name}: a cell is tagged both '{SOLUTION}' and '{EXERCISE}'"


@pytest.mark.slow
@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_student_notebook_runs_to_its_first_stub(student_dir, path):
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(student_dir / path.name, as_version=4)
    stubs = [i for i, c in enumerate(nb.cells) if EXERCISE in c.get("metadata", {}).get("tags", [])]
    env_path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    os.environ.setdefault("MPLBACKEND", "Agg")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = env_path
    try:
        client = NotebookClient(nb, timeout=600, kernel_name="python3",
                                resources={"metadata": {"path": str(ROOT / "book")}})
        try:
            client.execute()
        except CellExecutionError as error:
            failed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
                      and any(o.get("output_type") == "error" for o in c.get("outputs", []))]
            assert stubs, f"{path.name} has no exercise stub, yet a cell failed: {error}"
            assert error.ename == "NotImplementedError", f"{path.name}: a cell failed before the first stub: {error}"
            assert failed == [stubs[0]], f"{path.name}: stopped at cell {failed}, the first stub is cell {stubs[0]}"
        else:
            assert not stubs, f"{path.name}: the first exercise stub did not raise NotImplementedError"
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old
