"""Build a small Jupyter Book with the repository's own configuration (for the book tests).

Used by ``test_book_scan.py`` and ``test_check_book.py``: a temporary folder
gets ``_config.yml``, ``_ext`` and ``references.bib`` from the repository, a
``_toc.yml`` listing the given pages, and the pages themselves (MyST markdown
``.md`` text or notebook dicts ``.ipynb``).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"


def build_mini_book(dest, pages, warningiserror=True):
    """Write and build a book under ``dest``; return (returncode, log, html_dir).

    ``pages`` maps file names (``"page.md"``, ``"nb.ipynb"``) to contents; the
    first one is the root, the others are its chapters.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "_config.yml", dest / "_config.yml")
    shutil.copytree(ROOT / "_ext", dest / "_ext", dirs_exist_ok=True)
    shutil.copy(ROOT / "references.bib", dest / "references.bib")
    names = list(pages)
    toc = f"format: jb-book\nroot: {Path(names[0]).stem}\n"
    if names[1:]:
        toc += "chapters:\n" + "".join(f"  - file: {Path(n).stem}\n" for n in names[1:])
    (dest / "_toc.yml").write_text(toc)
    for name, content in pages.items():
        text = content if isinstance(content, str) else json.dumps(content)
        (dest / name).write_text(text)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", str(dest), "--keep-going"] + (["--warningiserror"] if warningiserror else [])
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    return result.returncode, result.stdout[-3000:] + result.stderr[-3000:], dest / "_build" / "html"


def notebook(*cells):
    """A notebook dict from ("markdown" | "code", source) pairs."""
    out = []
    for kind, source in cells:
        cell = {"cell_type": kind, "metadata": {}, "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        out.append(cell)
    return {"cells": out,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}
