"""`make check-book`: every built page opened in headless Chromium (tools/check_book.py).

A small book built with the repository's configuration holds one good page (math,
a plotly figure, a citation) and one page per fault the check must catch: a plotly
div that never renders, a MathJax error, a request that leaves the book's folder
(network and a file outside it) and a console error. Skipped, with the reason,
where Chromium or the playwright package is not installed (e.g. a fresh CI machine).
"""

import sys

import numpy as np
import pytest

from minibook import TOOLS, build_mini_book

sys.path.insert(0, str(TOOLS))
from check_book import chromium_available, check_pages  # noqa: E402

AVAILABLE, INFO = chromium_available()
needs_chromium = pytest.mark.skipif(not AVAILABLE, reason=f"headless Chromium check skipped: {INFO}")


def _plotly_html():
    from fieldseg_core import viz

    labels = np.zeros((16, 16), dtype=int)
    labels[3:13, 3:13] = 1
    field = np.where(labels > 0, 1.0, 0.0)
    return viz.field_surface(field, labels, height=300).to_html(full_html=False, include_plotlyjs=False)


def _pages():
    return {
        "good.md": "# Good page\n\nInline $\\Delta u = -1$ and\n\n$$\nU = \\frac{u}{\\max u}\n$$\n\n"
                   "Cited {cite:t}`stringer2021cellpose`.\n\n" + _plotly_html() + "\n\n"
                   "```{bibliography}\n:filter: docname in docnames\n```\n",
        "deadplot.md": "# Dead figure\n\n<div id=\"dead\" class=\"plotly-graph-div\" style=\"height:100px\"></div>\n",
        "badmath.md": "# Bad math\n\nAn undefined macro $\\nosuchmacro{x}$.\n",
        "texerror.md": "# TeX error\n\nA missing argument $\\frac{1}$.\n",
        "remote.md": "# Remote\n\n<img src=\"https://example.org/pixel.png\" alt=\"remote\">\n\n"
                     "<img src=\"../../../outside.png\" alt=\"outside\">\n",
        "console.md": "# Console\n\n<script>console.error(\"deliberate failure\")</script>\n",
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    rc, log, html = build_mini_book(tmp_path_factory.mktemp("check") / "book", _pages())
    assert rc == 0, log
    return check_pages(html)


@needs_chromium
@pytest.mark.slow
def test_good_page_passes(report):
    assert report["good.html"]["problems"] == []
    assert report["good.html"]["figures"] == 1 and report["good.html"]["math"]
    assert report["genindex.html"]["problems"] == []


@needs_chromium
@pytest.mark.slow
@pytest.mark.parametrize("page, expected", [
    ("deadplot.html", ["plotly figure did not render"]),
    ("badmath.html", ["MathJax error: 1 undefined TeX macro"]),
    ("texerror.html", ["MathJax error"]),
    ("remote.html", ["request leaves the book: https://example.org", "request leaves the book: file://"]),
    ("console.html", ["console error: deliberate failure"]),
])
def test_faulty_pages_fail(report, page, expected):
    problems = report[page]["problems"]
    for text in expected:
        assert any(text in p for p in problems), problems


def test_skip_reason_names_the_install_command(monkeypatch):
    import check_book

    monkeypatch.setenv("FIELDSEG_CHROMIUM", "/nonexistent/chromium")
    ok, reason = check_book.chromium_available()
    assert not ok and "apt-get install chromium" in reason
    assert check_book.main(["/nonexistent"]) == 2
