"""Sphinx extension: a book that renders with no network access.

- Serves plotly.js from the book itself: notebook outputs made with
  :mod:`fieldseg_core.viz` are HTML that expects a global ``Plotly`` object but
  does not include the library, so ``plotly.min.js`` is copied from the
  *installed* plotly package into ``_static`` (no third-party JavaScript is
  committed to the repository) and loaded only on the pages that hold a
  plotly figure: it is 4.6 MB, and most pages have none.
- Drops sphinx-thebe's inline loader, which names a CDN URL. The book does not
  use Thebe (live code runs on Binder or locally instead).

MathJax is served offline by the ``sphinx-mathjax-offline`` extension.
"""

from pathlib import Path

import plotly
from sphinx.util.fileutil import copy_asset_file

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
# Every figure of plotly's HTML output is a div of this class.
PLOTLY_DIV = "plotly-graph-div"


def _copy_plotly_js(app, exc):
    if exc is None and app.builder.format == "html":
        copy_asset_file(str(PLOTLY_JS), str(Path(app.outdir) / "_static"))


def _page_scripts(app, pagename, templatename, context, doctree):
    # Called with this page's context: add_js_file here adds to this page only.
    if PLOTLY_DIV in context.get("body", ""):
        # Loaded synchronously in <head>, before the inline scripts of the figures run.
        app.add_js_file("plotly.min.js", priority=200)
    scripts = context.get("script_files")
    if scripts:
        context["script_files"] = [
            js for js in scripts if "THEBE_JS_URL" not in getattr(js, "attributes", {}).get("body", "")
        ]


def setup(app):
    if not PLOTLY_JS.is_file():
        raise RuntimeError(f"plotly.min.js not found at {PLOTLY_JS}; is plotly installed?")
    app.connect("build-finished", _copy_plotly_js)
    app.connect("html-page-context", _page_scripts)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
