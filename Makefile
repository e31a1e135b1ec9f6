# The README's two commands are `make demo` and `make test`; both set everything up first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU build of torch lies on this machine's disk at exactly this pin; installing it first
# means the project's own torch range is already met and no CUDA wheels are fetched.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= local,cluster,privacy,data,server,notebooks,browser,dev
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lab bench lint clean js strip

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: setup
	$(BIN)/clio-lab run datasets/clio_demo.jsonl --out runs/demo

# Lint, then every test and every notebook (nbval: a notebook passes when it runs top to bottom),
# with a throw-away cache so nothing is answered from an earlier run.
test: setup
	$(BIN)/ruff check clio_lab tests benchmarks datasets
	CLIO_LAB_CACHE=$$(mktemp -d) CLIO_LAB_PROGRESS=0 $(BIN)/python -m pytest tests notebooks --nbval-lax

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
