# The README's two commands are `make demo` and `make test`; both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch lies on this machine's disk at exactly this pin; installing it first
# means the project's own torch range is already met and no CUDA wheels are fetched.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= local,cluster,privacy,multilingual,data,server,notebooks,browser,distributed,dev
STAMP  := $(VENV)/.installed

.PHONY: setup demo test chromium lab bench lint clean js strip

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	$(BIN)/python -c "from clio_lab.projection import compile_kernels; print(f'compiled the map kernels in {compile_kernels():.0f} s')"
	touch $(STAMP)

demo: setup
	$(BIN)/clio-lab run datasets/clio_demo.jsonl --out runs/demo

# Lint, then every test and every notebook (nbval: a notebook passes when it runs top to bottom),
# with a throw-away cache so nothing is answered from an earlier run. CLIO_LAB_NO_SKIPS=1 turns a skipped
# test into a failure (tests/conftest.py): the whole suite runs, or the run says what is missing.
test: setup chromium
	$(BIN)/ruff check clio_lab tests benchmarks datasets
	CLIO_LAB_CACHE=$$(mktemp -d) CLIO_LAB_PROGRESS=0 CLIO_LAB_NO_SKIPS=1 $(BIN)/python -m pytest tests notebooks --nbval-lax

# The browser tests drive Debian's Chromium (Playwright cannot download browsers here): install it where it is
# missing, as root or with password-less sudo, or stop with one line that says how.
CHROMIUM ?= $(or $(CLIO_LAB_CHROMIUM),/usr/bin/chromium)
chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo"; else \
	  echo "make test: the browser tests need Chromium at $(CHROMIUM); install it with 'sudo apt-get install chromium' (or set CLIO_LAB_CHROMIUM to a Chromium binary) and run make test again" >&2; exit 1; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "make test: the browser tests need Chromium at $(CHROMIUM) and this machine has no apt-get; install Chromium and set CLIO_LAB_CHROMIUM to its binary" >&2; exit 1; fi; \
	echo "make test: installing Chromium for the browser tests (apt-get)"; \
	$$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null

lab: setup
	$(BIN)/jupyter lab notebooks/

bench: setup
	$(BIN)/python benchmarks/throughput.py

# Rebuild the widgets' ES modules (committed under clio_lab/widgets/static/) from js/src with npm's esbuild.
js:
	cd js && npm ci --no-audit --no-fund && npm run build

# Notebooks are kept without outputs, so that their diffs are their code (tests/test_notebooks.py checks).
strip: setup
	$(BIN)/jupyter nbconvert --clear-output --inplace --log-level=WARN notebooks/*.ipynb

lint: setup
	$(BIN)/ruff check clio_lab tests benchmarks

clean:
	rm -rf runs .clio_cache .pytest_cache
