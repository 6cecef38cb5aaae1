"""Book-level checks: layout, notebooks, table of contents, environments."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("**/*.ipynb"))


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("chapters", "sections"):
                walk(entry.get(key, []))
            for part in entry.get("parts", []):
                walk(part.get("chapters", []))

    walk(toc.get("chapters", []))
    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    return files


def test_required_layout():
    for name in ["book", "fieldseg_core", "tests", "benchmarks", "environment.yml", "_config.yml",
                 "_toc.yml", "README.md", "pyproject.toml", "Makefile", ".ci/run", "requirements.txt"]:
        assert (ROOT / name).exists(), name


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"{path.name}: a code cell has stored outputs"
            assert cell.get("execution_count") is None, f"{path.name}: a code cell has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_fieldseg_core(path):
    nb = json.loads(path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert re.search(r"^\s*(import fieldseg_core|from fieldseg_core\b)", code, re.M), path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_listed_in_toc(path):
    stem = path.relative_to(ROOT).with_suffix("").as_posix()
    assert stem in [str(Path(f).with_suffix("")) for f in toc_files()], f"{stem} missing from _toc.yml"


def test_toc_entries_exist():
    for entry in toc_files():
        matches = list(ROOT.glob(str(Path(entry).with_suffix(""))) ) + list(ROOT.glob(f"{Path(entry).with_suffix('')}.*"))
        assert matches, f"_toc.yml lists {entry}, which does not exist"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.name.startswith(tuple("0123456789"))],
                         ids=lambda p: p.name)
def test_chapter_has_the_book_shape(path):
    nb = json.loads(path.read_text())
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    headings = [h.strip().lower() for h in re.findall(r"^#{1,3}\s+(.*)$", md, re.M)]
    for section in ["learning objectives", "exercises", "summary", "references"]:
        assert any(h.startswith(section) for h in headings), f"{path.name}: no '{section}' section"
    order = [next(i for i, h in enumerate(headings) if h.startswith(s))
             for s in ["learning objectives", "exercises", "summary", "references"]]
    assert order == sorted(order), f"{path.name}: sections out of order"
    assert re.search(r"time[^\n]{0,40}\d+\s*min", md, re.I), f"{path.name}: no time estimate"
    assert "```{dropdown}" in md or ":::{dropdown}" in md, f"{path.name}: exercise solutions belong in dropdowns"


def _requirement_pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name, version = line.split("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def test_requirements_are_pinned_and_torch_is_2_13():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    body = [l.split("#")[0].strip() for l in lines if l.split("#")[0].strip()]
    assert all("==" in l for l in body), "every requirement is pinned with =="
    assert _requirement_pins(lines)["torch"] == "2.13.0"


def test_environment_yml_matches_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert "-e ." in pip
    # CPU-only torch: the CPU wheel index, and no CUDA packages from conda.
    assert any("whl/cpu" in p for p in pip)
    assert not any("cuda" in str(d).lower() for d in env["dependencies"] if not isinstance(d, dict))
    assert _requirement_pins(pip) == _requirement_pins((ROOT / "requirements.txt").read_text().splitlines())


def test_peers_environment_is_pinned_apart_from_the_book():
    # make bench-peers: Cellpose and Omnipose pinned in their own environment, on
    # the same numerical stack as the book, and never in the book's requirements.
    peers = _requirement_pins((ROOT / "benchmarks" / "peers-requirements.txt").read_text().splitlines())
    book = _requirement_pins((ROOT / "requirements.txt").read_text().splitlines())
    assert peers["cellpose"] == "4.2.1.1" and "omnipose" in peers
    assert "cellpose" not in book and "omnipose" not in book
    for name in ("numpy", "scipy", "scikit-image", "scikit-learn"):
        assert peers[name] == book[name], name
    makefile = (ROOT / "Makefile").read_text()
    assert "bench-peers:" in makefile and "benchmarks/peers-requirements.txt" in makefile
    assert ".venv-peers" in (ROOT / ".gitignore").read_text().split()


def test_config_builds_only_toc_and_excludes_sources():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["only_build_toc_files"] is True
    for pattern in [".*", ".venv", "_build", "tests", "fieldseg_core"]:
        assert pattern in cfg["exclude_patterns"]
    assert cfg["execute"]["execute_notebooks"] in ("force", "auto", "cache")
    assert cfg["launch_buttons"]["binderhub_url"]
    assert "sphinx-mathjax-offline" in cfg["sphinx"]["extra_extensions"]


def test_readme_shows_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make book" in text and "make test" in text


def test_ci_runs_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


# An internal file number of a source paper (the word for the founding files plus
# a three-digit number, or that word plus "paper") means nothing to a reader: papers are cited by authors and title
# through references.bib. shared/ holds the source files themselves.
SOURCE_NUMBER = re.compile(r"\bseed(?:\s+paper)?s?\s+0\d\d\b|\bseed\s+papers?\b", re.I)
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".yml", ".yaml", ".txt", ".toml", ".cfg", ".bib", ".csv", ".json",
                 ".html", ".rst", ""}


def _tracked_files():
    import subprocess

    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot list the tracked files")
    return [ROOT / f for f in out.decode().split("\0") if f and not f.startswith("shared/")]


def test_no_source_file_numbers_anywhere_a_reader_looks():
    hits = []
    for path in _tracked_files():
        if path.suffix not in TEXT_SUFFIXES or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for m in SOURCE_NUMBER.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            hits.append(f"{path.relative_to(ROOT)}:{line}: {m.group(0)!r}")
    assert not hits, f"{len(hits)} mentions of a source file number (cite by authors/title):\n" + "\n".join(hits[:40])


def test_source_number_pattern():
    word = "se" + "ed"   # spelled apart, so that this file passes its own check
    for text in (f"{word} 000", f"{word.title()} 002 calls", f"{word} paper 001", f"the {word} papers",
                 f"{word.upper()} 004's"):
        assert SOURCE_NUMBER.search(text), text
    for text in ("seed=0", "seed 0", "(seed 1)", "seeds 0-4", "SEEDS = [0, 1]", "seeded and bit-reproducible"):
        assert not SOURCE_NUMBER.search(text), text


def _chapter_title(path):
    nb = json.loads(path.read_text())
    first = "".join(nb["cells"][0]["source"]).strip().splitlines()[0]
    assert first.startswith("# "), f"{path.name}: the first cell must start with the '# N. Title' heading"
    return first[2:].strip()


def test_landing_page_names_every_chapter_by_its_title():
    """book/intro.md lists the chapters as 'N. Title', exactly as each chapter's heading reads."""
    intro = (ROOT / "book" / "intro.md").read_text()
    listed = dict(re.findall(r"(?:^|[|·]\s*)(\d{1,2})\. ([^|·\n]+?)\s*(?=[|·\n])", intro, re.M))
    chapters = [ROOT / f"{f}.ipynb" for f in toc_files() if (ROOT / f"{f}.ipynb").is_file()]
    titles = {}
    for path in chapters:
        number, _, title = _chapter_title(path).partition(". ")
        if number.isdigit():
            titles[number] = title
    assert titles, "no numbered chapters found"
    for number, title in titles.items():
        assert listed.get(number) == title, (
            f"intro.md names chapter {number} {listed.get(number)!r}, its heading says {title!r}")
    assert set(listed) == set(titles), f"intro.md lists chapters {sorted(listed)}, the book has {sorted(titles)}"


# Helpers that live in the package (one home each); a notebook calls them instead
# of defining its own copy.
PACKAGE_HELPERS = {
    "table": "viz.table", "line_profile": "viz.line_profile",
    "touching_pair": "synthetic.touching_pairs", "touching_pairs": "synthetic.touching_pairs",
    "touching_count": "synthetic.touching_count", "imitate_prediction": "synthetic.imitate_prediction",
    "imitate_flow_prediction": "synthetic.imitate_flow_prediction",
    "per_slice_masks": "studies.per_slice_masks", "compare_3d": "studies.compare_3d",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_does_not_copy_package_helpers(path):
    nb = json.loads(path.read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    copies = [f"{name} (use {PACKAGE_HELPERS[name]})" for name in re.findall(r"^\s*def (\w+)\(", code, re.M)
              if name in PACKAGE_HELPERS]
    assert not copies, f"{path.name} defines its own " + ", ".join(copies)
