# Two commands do all set-up on a fresh clone:
#   make book   - create .venv, install pinned deps + package, execute every notebook, build HTML
#   make test   - same set-up, then all tests incl. nbval over every notebook
# and, for maintainers and instructors:
#   make check-book - open every built page in headless Chromium (needs `apt-get install chromium`)
#   make student    - the student edition: notebooks without solutions, in _build/student
#   make bench       - the speed targets (benchmarks/bench_*.py)
#   make bench-peers - ours against Cellpose and Omnipose, in a separate .venv-peers
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# One thread per process: the book's tensors are small, and a 2-thread torch
# pool stalls badly when the cores are shared (measured 6-10x slower under
# load). Override with `make test OMP_NUM_THREADS=2`.
OMP_NUM_THREADS ?= 1
export OMP_NUM_THREADS

.PHONY: all setup book test bench bench-peers clean check-book student

all: test

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	FIELDSEG_BOOK_HTML=_build/html $(BIN)/python -m pytest -q -p no:cacheprovider -o addopts="" \
		tests/test_book_offline.py tests/test_book_scan.py -k built_book
	@echo "Book built: open _build/html/index.html"

test: $(STAMP)
	$(BIN)/python -m pytest

# Every page of _build/html (run `make book` first) in headless Chromium: fails on a
# plotly figure that did not render, a MathJax error, a request leaving the book or a
# console error. SCREENSHOTS=dir also saves a full-page PNG of every page.
check-book: $(STAMP)
	@test -d _build/html || { echo "no _build/html: run make book first"; exit 1; }
	$(BIN)/python tools/check_book.py _build/html $(if $(SCREENSHOTS),--screenshots $(SCREENSHOTS))

# Student edition: solution cells removed, exercise cells replaced by stubs.
student: $(STAMP)
	rm -rf _build/student
	$(BIN)/python tools/student.py book --out _build/student

bench: $(STAMP)
	@for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# The peers live in their own environment (benchmarks/peers-requirements.txt):
# they need torchvision, which does not import beside the book's torch pin.
# torch may use every core here, as the peers would by default.
PEERS       ?= .venv-peers
PEERS_STAMP := $(PEERS)/.installed

$(PEERS_STAMP): benchmarks/peers-requirements.txt pyproject.toml
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/python -m pip install --quiet --upgrade pip
	$(PEERS)/bin/python -m pip install --quiet -r benchmarks/peers-requirements.txt
	$(PEERS)/bin/python -m pip install --quiet --no-deps -e .
	touch $(PEERS_STAMP)

bench-peers: $(PEERS_STAMP)
	env -u OMP_NUM_THREADS $(PEERS)/bin/python benchmarks/bench_peers.py

clean:
	rm -rf _build .pytest_cache
