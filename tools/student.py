"""Write the student edition of the book's notebooks: solutions removed, exercises stubbed.

Cell-tag convention (the chapters follow it):

- ``solution``: a cell that holds a solution (a markdown ``{dropdown}``
  Solution, or a code cell). It is **removed**.
- ``exercise``: a code cell the student fills in. In the full book it holds
  working code; here its body is replaced by a stub that keeps the cell's
  leading comment lines (the task) and raises ``NotImplementedError``.

Outputs and execution counts are cleared. Everything else is copied as is, so
cells that later cells need must not carry either tag.

Usage::

    python tools/student.py [book] [--out _build/student]

Writes one notebook per chapter to ``--out`` and prints what it changed.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

SOLUTION, EXERCISE = "solution", "exercise"
STUB = "# YOUR CODE HERE\nraise NotImplementedError(\"{what}: replace this line with your solution\")\n"


def _tags(cell):
    return set(cell.get("metadata", {}).get("tags", []))


def _source(cell):
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _exercise_name(cells, index):
    # The nearest "Exercise N.M" named above the cell, else a generic name.
    for cell in reversed(cells[:index]):
        m = re.findall(r"Exercise\s+(\d+(?:\.\d+)?)", _source(cell))
        if m:
            return f"Exercise {m[-1]}"
    return "Exercise"


def stub_source(source, what="Exercise"):
    """The stub that replaces an exercise cell: its leading comments, then a raise."""
    lines = source.splitlines()
    head = []
    for line in lines:
        if line.strip().startswith("#") or (not line.strip() and head):
            head.append(line)
        else:
            break
    while head and not head[-1].strip():
        head.pop()
    text = "\n".join(head) + ("\n" if head else "")
    return text + STUB.format(what=what)


def student_notebook(nb):
    """A student copy of a notebook dict; returns (notebook, removed, stubbed)."""
    nb = copy.deepcopy(nb)
    cells, removed, stubbed = [], 0, 0
    for i, cell in enumerate(nb["cells"]):
        tags = _tags(cell)
        if SOLUTION in tags:
            removed += 1
            continue
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
            if EXERCISE in tags:
                cell["source"] = stub_source(_source(cell), _exercise_name(nb["cells"], i))
                # a stub is not hidden in the student's copy
                cell["metadata"]["tags"] = [t for t in cell["metadata"]["tags"]
                                            if t not in ("hide-input", "hide-cell", "remove-input")]
                stubbed += 1
        cells.append(cell)
    nb["cells"] = cells
    return nb, removed, stubbed


def write_student_edition(book_dir="book", out_dir="_build/student"):
    """Write the student notebooks; return {name: (removed, stubbed)}."""
    book_dir, out_dir = Path(book_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {}
    for path in sorted(book_dir.glob("*.ipynb")):
        nb, removed, stubbed = student_notebook(json.loads(path.read_text(encoding="utf-8")))
        (out_dir / path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        summary[path.name] = (removed, stubbed)
    return summary


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("book", nargs="?", default="book")
    parser.add_argument("--out", default="_build/student")
    args = parser.parse_args(argv)
    summary = write_student_edition(args.book, args.out)
    for name, (removed, stubbed) in summary.items():
        print(f"{name}: {removed} solution cell(s) removed, {stubbed} exercise stub(s)")
    print(f"student edition: {len(summary)} notebooks in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
