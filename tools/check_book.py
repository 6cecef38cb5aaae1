"""Open every page of the built book in headless Chromium and report what a reader would see broken.

A page fails when

- a plotly figure did not render (a ``plotly-graph-div`` without its SVG),
- MathJax reported an error (an ``mjx-merror`` element, or MathJax did not start),
- it requested anything outside the book's folder (the network, or files elsewhere),
- the browser console logged an error, or a script threw.

Usage::

    python tools/check_book.py [_build/html] [--screenshots DIR]

Needs Chromium (Debian/Ubuntu: ``apt-get install chromium``; elsewhere set
``FIELDSEG_CHROMIUM`` to the browser's path) and the ``playwright`` Python
package from requirements.txt (its own browser download is not used).
Exit status: 0 all pages pass, 1 a page failed, 2 no Chromium.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SKIP_PARTS = {"_static", "_sources", "_images"}


def find_chromium():
    """Path of a Chromium executable, or None."""
    env = os.environ.get("FIELDSEG_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_available():
    """(True, path) when Chromium and the playwright package are installed, else (False, reason)."""
    path = find_chromium()
    if path is None:
        return False, ("no Chromium found: install it (Debian/Ubuntu: `apt-get install chromium`) "
                       "or set FIELDSEG_CHROMIUM to its path")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False, "the playwright package is not installed (pip install -r requirements.txt)"
    return True, path


# Runs in the page once it has loaded: waits for MathJax's typesetting and for
# plotly's figures, then reports what did not render.
_INSPECT = """
async () => {
  const out = {mathjax: "absent", merrors: [], plotly_total: 0, plotly_unrendered: []};
  const hasMath = document.querySelector(".math") !== null;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; out.mathjax = "ok"; }
    catch (e) { out.mathjax = "error: " + e; }
  } else if (hasMath) {
    out.mathjax = "missing";
  }
  // TeX errors render as <mjx-merror>; undefined macros (MathJax's noundefined
  // extension) as red text.
  out.merrors = Array.from(document.querySelectorAll("mjx-merror, [data-mjx-error]"))
      .map(e => (e.getAttribute("data-mjx-error") || e.getAttribute("title") || "TeX error").slice(0, 120));
  const undefinedMacros = Array.from(document.querySelectorAll('mjx-mtext[style*="color: red"]'));
  if (undefinedMacros.length) out.merrors.push(undefinedMacros.length + " undefined TeX macro(s) shown in red");
  const divs = Array.from(document.querySelectorAll(".plotly-graph-div"));
  out.plotly_total = divs.length;
  for (let t = 0; t < 100; t++) {
    if (divs.every(d => d.querySelector(".main-svg"))) break;
    await new Promise(r => setTimeout(r, 100));
  }
  out.plotly_unrendered = divs.filter(d => !d.querySelector(".main-svg")).map(d => d.id || "(no id)");
  out.has_math = hasMath;
  return out;
}
"""


def _is_redirect(path):
    # Jupyter Book's index.html only forwards to the root page (meta refresh).
    head = path.read_text(encoding="utf-8", errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


def _inside(url, root_url):
    return url.startswith(root_url) or url.startswith(("data:", "blob:", "about:"))


def _request_guard(root_url, problems):
    # A route handler (one argument: playwright passes the request too to a
    # two-argument handler) that lets the book's own files through and blocks,
    # and records, everything else.
    def handler(route):
        url = route.request.url
        if _inside(url, root_url):
            route.continue_()
        else:
            problems.append(f"request leaves the book: {url[:160]}")
            route.abort()
    return handler


def check_pages(html_dir, screenshots=None, executable=None, width=1280, height=900):
    """Check every page; return a dict page -> {"problems": [...], "figures": n, "math": bool}."""
    from playwright.sync_api import sync_playwright

    html_dir = Path(html_dir).resolve()
    pages = sorted(p for p in html_dir.rglob("*.html") if not SKIP_PARTS & set(p.relative_to(html_dir).parts)
                   and not _is_redirect(p))
    if not pages:
        raise FileNotFoundError(f"no HTML pages under {html_dir}")
    root_url = html_dir.as_uri() + "/"
    executable = executable or find_chromium()
    report = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True,
                                     args=["--no-sandbox", "--allow-file-access-from-files"])
        context = browser.new_context(viewport={"width": width, "height": height})
        for path in pages:
            name = str(path.relative_to(html_dir))
            problems = []
            page = context.new_page()

            page.route("**/*", _request_guard(root_url, problems))
            page.on("console", lambda msg, problems=problems: problems.append(
                f"console {msg.type}: {msg.text[:200]}") if msg.type == "error" else None)
            page.on("pageerror", lambda exc, problems=problems: problems.append(f"script error: {str(exc)[:200]}"))
            page.goto(path.as_uri(), wait_until="load", timeout=60_000)
            result = page.evaluate(_INSPECT)
            if result["has_math"] and result["mathjax"] != "ok":
                problems.append(f"MathJax did not typeset the page ({result['mathjax']})")
            problems += [f"MathJax error: {m}" for m in result["merrors"]]
            problems += [f"plotly figure did not render: div {d}" for d in result["plotly_unrendered"]]
            if screenshots:
                shot = Path(screenshots) / (name.replace("/", "_").removesuffix(".html") + ".png")
                shot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(shot), full_page=True)
            page.close()
            report[name] = {"problems": problems, "figures": result["plotly_total"], "math": result["has_math"]}
        browser.close()
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", default="_build/html")
    parser.add_argument("--screenshots", help="write a full-page PNG of every page to this folder")
    args = parser.parse_args(argv)
    ok, info = chromium_available()
    if not ok:
        print(f"check-book: {info}", file=sys.stderr)
        return 2
    report = check_pages(args.html_dir, screenshots=args.screenshots, executable=info)
    failed = 0
    for name, r in report.items():
        state = "ok" if not r["problems"] else "FAIL"
        failed += bool(r["problems"])
        print(f"{state:4s} {name} ({r['figures']} plotly figure(s), {'math' if r['math'] else 'no math'})")
        for p in r["problems"]:
            print(f"     - {p}")
    print(f"check-book: {len(report) - failed} of {len(report)} pages pass")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
