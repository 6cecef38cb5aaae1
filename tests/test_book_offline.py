"""The built book must render offline: no scripts, styles or images from the network.

``test_mini_book_renders_offline`` builds a one-page book with the repository's
own ``_config.yml`` and ``_ext`` (a notebook with MyST math and a plotly figure
from :mod:`fieldseg_core.viz`, and a page without a figure, which must not load
plotly.js) and scans the HTML. ``make book`` additionally
runs ``test_built_book_is_offline`` over the full ``_build/html``.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REMOTE = re.compile(r"^\s*(https?:)?//", re.I)
CDN_IN_SCRIPT = re.compile(r"https?://[^\s\"']*(cdn|unpkg|jsdelivr|googleapis|cloudflare|mathjax)", re.I)


class _ResourceParser(HTMLParser):
    """Collect every resource a page would load, and inline script text."""

    ATTRS = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src",
             "audio": "src", "video": "src", "embed": "src"}

    def __init__(self):
        super().__init__()
        self.resources, self.inline = [], []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        key = self.ATTRS.get(tag)
        if tag == "link" and attrs.get("rel") in ("canonical",):
            return  # metadata, not a loaded resource
        if key and attrs.get(key):
            self.resources.append((tag, attrs[key]))
        self._in_script = tag == "script" and not attrs.get("src")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.inline.append(data)


def offline_problems(html_dir):
    """List every network resource referenced by the HTML pages under ``html_dir``."""
    problems = []
    pages = sorted(Path(html_dir).rglob("*.html"))
    assert pages, f"no HTML pages under {html_dir}"
    for page in pages:
        parser = _ResourceParser()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for tag, url in parser.resources:
            if REMOTE.match(url):
                problems.append(f"{page.name}: <{tag}> loads {url}")
        for script in parser.inline:
            for m in CDN_IN_SCRIPT.finditer(script):
                problems.append(f"{page.name}: inline script references {m.group(0)}")
    return problems


NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": [
            "# Offline page\n", "\n", "Inline $u = 1 - r^2/R^2$ and display math:\n", "\n",
            "$$\\Delta u = -1 \\quad \\text{in } \\Omega_k$$\n", "\n",
            "Cited as {cite:t}`stringer2021cellpose`.\n", "\n",
            "```{bibliography}\n", "```\n"]},
        {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": [
            "import numpy as np\n", "from fieldseg_core import fields, viz\n",
            "labels = np.zeros((24, 24), dtype=int); labels[4:20, 4:20] = 1\n",
            "viz.field_surface(fields.poisson_field(labels), labels)"]},
    ],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.mark.slow
def test_mini_book_renders_offline(tmp_path):
    book = tmp_path / "mini"
    book.mkdir()
    shutil.copy(ROOT / "_config.yml", book / "_config.yml")
    shutil.copytree(ROOT / "_ext", book / "_ext")
    shutil.copy(ROOT / "references.bib", book / "references.bib")
    (book / "_toc.yml").write_text("format: jb-book\nroot: page\nchapters:\n  - file: text\n")
    (book / "page.ipynb").write_text(json.dumps(NOTEBOOK))
    (book / "text.md").write_text("# A page without figures\n\nInline $x^2$ only.\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", str(book), "--warningiserror", "--keep-going"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = book / "_build" / "html"
    assert (html / "_static" / "plotly.min.js").is_file()
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    page = (html / "page.html").read_text()
    assert "plotly-graph-div" in page and "_static/plotly.min.js" in page
    assert "mathjax/tex-chtml.js" in page
    # plotly.js (4.6 MB) only where a plotly figure is
    text = (html / "text.html").read_text()
    assert "plotly-graph-div" not in text and "plotly.min.js" not in text
    assert offline_problems(html) == []


def test_scanner_flags_remote_resources(tmp_path):
    (tmp_path / "a.html").write_text(
        '<html><head><script src="https://cdn.example.org/x.js"></script>'
        '<link rel="stylesheet" href="//fonts.example.org/f.css">'
        '<script>require.config({paths: {plotly: "https://cdn.plot.ly/plotly.js"}})</script></head>'
        '<body><img src="_static/ok.png"><a href="https://example.org">a link is fine</a></body></html>')
    problems = offline_problems(tmp_path)
    assert len(problems) == 3


@pytest.mark.skipif(not os.environ.get("FIELDSEG_BOOK_HTML"), reason="run by `make book` on the full build")
def test_built_book_is_offline():
    html = Path(os.environ["FIELDSEG_BOOK_HTML"])
    assert (html / "_static" / "plotly.min.js").is_file()
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert offline_problems(html) == []
