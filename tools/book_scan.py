"""Scan a built HTML book for what a reader must never see.

- **Raw TeX in prose**: ``$$``, ``$``, ``\\frac``, ``\\mathcal``, ``\\text{`` …
  in the text of a page outside math, code and cell outputs. That is what a
  display equation inside a list item or a sentence turns into.
- **Prose typeset as math**: a math element whose TeX holds a run of plain
  words (outside ``\\text{}``), the other face of the same fault, or a MyST
  role (``{glue:text}``, ``{cite:t}``) written inside ``$...$``, which shows
  as raw text in the formula.
- **Tables shown as text**: a Markdown table output whose delimiter row
  (``|---|``) is visible, e.g. because a header holds a ``|``.
- **Unresolved citations and roles**: sphinxcontrib-bibtex renders a citation
  of an unknown key as an empty ``<span class="bibtex-citation">``; a role
  MyST did not parse stays as ``{cite:t}`…``` text.

Usage: ``python tools/book_scan.py _build/html`` (exit status 1 on a problem).
``tests/test_book_scan.py`` checks the scanner on a small built book, and
``make book`` runs it over the full build.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

# TeX commands that never belong in prose.
TEX_COMMAND = re.compile(
    r"\\(frac|dfrac|tfrac|mathcal|mathrm|mathbf|mathbb|operatorname|text|textbf|begin|end|sum|prod|int|"
    r"left|right|sqrt|cdot|quad|qquad|sigma|lambda|varepsilon|epsilon|Delta|nabla|partial|alpha|beta|"
    r"gamma|eta|theta|phi|varphi|Omega|omega|mu|rho|tau|le|leq|ge|geq|neq|approx|infty|in|to|times|"
    r"underbrace|overline|hat|tilde|bigl|bigr|Bigl|Bigr|lVert|rVert|mathbf|ell|pi)(?![A-Za-z])")
DOLLAR = re.compile(r"\$")
ROLE = re.compile(r"\{(cite(:[a-z]+)?|glue(:[a-z]+)?|eq|numref|ref|doc)\}`")
# five or more plain words in a row inside math: prose swallowed by an equation
PROSE_IN_MATH = re.compile(r"(?<![\\A-Za-z])(?:[A-Za-z]{2,}[,.;]?\s+){4,}[A-Za-z]{2,}")
# a MyST role written inside $...$ is not parsed: it shows as raw text in the formula
ROLE_IN_MATH = re.compile(r"\{(cite|glue)(:[a-z]+)?\}`|\b(glue|cite):(text|t|p|any|md|figure)\b")
# a Markdown table that did not render: its delimiter row shows as text
# (docutils' smart quotes turn "---" into an em dash)
RAW_TABLE = re.compile(r"\|\s*:?(?:-{3,}|[—–]-?):?\s*\|\s*:?(?:-{3,}|[—–]-?)")
TEXT_GROUP = re.compile(r"\\(text|mathrm|operatorname|textbf|mathit|textrm)\s*\{[^{}]*\}")

SKIP_TAGS = {"script", "style", "pre", "code", "kbd", "samp", "tt", "textarea", "svg", "math"}
SKIP_CLASSES = {"cell_output", "output", "highlight"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr"}


class _PageScanner(HTMLParser):
    """Collect prose text, math text and empty citations of a page's article."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack = []          # (tag, kind) with kind in {"article", "skip", "math", "cite", None}
        self.prose, self.math, self.cites = [], [], []
        self.shown = []          # all text a reader sees outside code (outputs included)
        self._cite_text = None

    def _kinds(self):
        return {k for _, k in self.stack}

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        attrs = dict(attrs)
        classes = set((attrs.get("class") or "").split())
        kind = None
        if tag == "article" and "bd-article" in classes:
            kind = "article"
        elif tag in SKIP_TAGS:
            kind = "code"
        elif classes & SKIP_CLASSES:
            kind = "skip"
        elif "math" in classes:
            kind = "math"
            self.math.append("")
        elif "bibtex-citation" in classes:
            kind = "cite"
            self._cite_text = ""
        self.stack.append((tag, kind))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                for _, kind in self.stack[i:]:
                    if kind == "cite" and self._cite_text is not None:
                        self.cites.append(self._cite_text.strip())
                        self._cite_text = None
                del self.stack[i:]
                return

    def handle_data(self, data):
        kinds = self._kinds()
        if "article" not in kinds or "code" in kinds:
            return
        self.shown.append(data)
        if "skip" in kinds:
            return
        if self._cite_text is not None:
            self._cite_text += data
        if "math" in kinds:
            self.math[-1] += data
        else:
            self.prose.append(data)


def _context(text, start, end, width=40):
    return " ".join(text[max(0, start - width):end + width].split())


def scan_page(html):
    """Problems found in one page's HTML, as a list of strings."""
    parser = _PageScanner()
    parser.feed(html)
    problems = []
    prose = " ".join(parser.prose)
    for pattern, what in ((DOLLAR, "raw $ (TeX delimiter) in prose"),
                          (TEX_COMMAND, "raw TeX command in prose"),
                          (ROLE, "unparsed role in prose")):
        for m in pattern.finditer(prose):
            problems.append(f"{what}: ...{_context(prose, m.start(), m.end())}...")
    for m in RAW_TABLE.finditer("".join(parser.shown)):
        problems.append(f"markdown table shown as text (a '|' in a header or cell?): ...{_context(m.group(0), 0, 0, 60)}...")
    for tex in parser.math:
        m = ROLE_IN_MATH.search(tex)
        if m:
            problems.append(f"role inside math (put it outside the $...$): ...{_context(tex, m.start(), m.end())}...")
        stripped = TEXT_GROUP.sub(" ", tex)
        m = PROSE_IN_MATH.search(stripped)
        if m:
            problems.append(f"prose typeset as math: ...{_context(stripped, m.start(), m.end())}...")
    for text in parser.cites:
        if not text:
            problems.append("unresolved citation (unknown bibtex key): an empty citation marker")
    return problems


def scan_book(html_dir):
    """Problems in every page under ``html_dir`` (``_static`` and ``_sources`` skipped)."""
    html_dir = Path(html_dir)
    pages = sorted(p for p in html_dir.rglob("*.html")
                   if not {"_static", "_sources", "_images"} & set(p.relative_to(html_dir).parts))
    if not pages:
        raise FileNotFoundError(f"no HTML pages under {html_dir}")
    problems = []
    for page in pages:
        for problem in scan_page(page.read_text(encoding="utf-8", errors="replace")):
            problems.append(f"{page.relative_to(html_dir)}: {problem}")
    return problems


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    html_dir = Path(argv[0] if argv else "_build/html")
    problems = scan_book(html_dir)
    for p in problems:
        print(p)
    print(f"book scan: {len(problems)} problem(s) in {html_dir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
