# Latent Walks — the one entry point. `make` (or `make help`) lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# torch goes in first, pinned, so nothing else can pull a multi-GB CUDA build.
# Outside this project's CI you may want e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu".
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
MODEL ?= teaching
PYTEST_ARGS ?=
# pytest-xdist: one process per core, each on one torch thread (tests/conftest.py); a module whose fixtures
# are costly is one unit of work (XDIST_WHOLE_MODULES there). PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2
XDIST := -n $(PYTEST_WORKERS)

.PHONY: help venv test test-fast coverage lint typecheck pytest lab demo bench bench-morph teaching-models badges strip lock clean browser-deps test-browser \
	test-colab test-floors test-fullsize book test-site

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "} {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): requirements/lock.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "$(TORCH_SPEC)" $(TORCH_PIP_ARGS)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/lock.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . \
	  || $(PY) -m pip install -q --disable-pip-version-check --no-deps -e .
	$(PY) -m pip check
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install the pinned dependencies (fast when nothing changed)

lint: $(STAMP) ## ruff on the package, tests, tools and notebooks
	$(VENV)/bin/ruff check .

typecheck: $(STAMP) ## mypy on helpers/ (settings in pyproject.toml)
	$(VENV)/bin/mypy

pytest: $(STAMP) ## the pytest suite only (the site's test aside: make test-site)
	@$(PY) -m pytest $(XDIST) -m "not site" $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

# The type check and the site's test run side by side after pytest: each keeps one core busy (mypy about 65 s from a
# cold cache, the site about 105 s), where one after the other they left a core idle for both.
test: lint browser-deps pytest ## lint + types + the whole test suite + the site (what CI runs; the browser tests when Chromium is here)
	@$(MAKE) --no-print-directory -j2 typecheck test-site

book: $(STAMP) ## the course as a static website -> outputs/site/index.html (executed notebooks cached by their code; offline)
	$(PY) tools/book.py build

# After `make pytest`, whose notebook runs on the teaching backend filled the book's cache: only Sphinx runs here.
test-site: $(STAMP) ## build the site (make book) and open every page in headless Chromium (screenshots: outputs/site_*.png)
	$(PY) -m pytest -m site tests/test_site.py

coverage: $(STAMP) ## line coverage of helpers/ by the fast tier (make test-fast's tests) -> outputs/coverage.txt
	@mkdir -p outputs
	$(VENV)/bin/coverage run -m pytest -q -m "not notebooks and not browser and not colab and not slow and not site"
	$(VENV)/bin/coverage report | tee outputs/coverage.txt

test-fast: $(STAMP) ## lint + the suite without notebooks, browser, Colab, quality gates and training (the inner loop)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q $(XDIST) -m "not notebooks and not browser and not colab and not slow and not site" $(PYTEST_ARGS)

# Debian's Chromium for tests/test_browser.py, installed quietly where we are root and apt-get exists;
# anywhere else the browser test is skipped with its reason. Playwright itself comes from the lock file.
browser-deps: ## install Debian's chromium for the browser test (root + apt-get only)
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "browser test: chromium is not installed and cannot be installed here (needs root and apt-get); it will be skipped"; \
	else \
	  echo "installing Debian's chromium for the browser test (apt-get, quiet) ..."; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get -qq -o DPkg::Lock::Timeout=120 update >/dev/null && \
	    apt-get -qq -o DPkg::Lock::Timeout=120 install -y chromium >/dev/null 2>&1; } \
	  || echo "browser test: apt-get could not install chromium; the browser test will be skipped"; \
	fi

test-browser: $(STAMP) browser-deps ## notebook 06 in JupyterLab in headless Chromium (screenshot: outputs/)
	$(PY) -m pytest -m browser tests/test_browser.py

test-floors: ## the test suite (quality gates and training aside) on the lowest declared versions (needs PyPI; 8.5 min measured, install included)
	@test -x .venv-floors/bin/python || $(PYTHON) -m venv .venv-floors
	.venv-floors/bin/python -m pip install -q --disable-pip-version-check -r requirements/floors.txt
	.venv-floors/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
	OMP_NUM_THREADS=1 .venv-floors/bin/python -m pytest -m "not browser and not colab and not site" \
	  --deselect tests/test_teaching_quality.py --deselect tests/test_teaching_train.py

test-fullsize: $(STAMP) ## SD 1.5, SDXL, Karlo and SD 3.5 medium (no T5) at full size with random weights on the CPU, one step through the public API (opt-in; ~20 GB free memory)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(PY) -m benchmarks.fullsize

test-colab: $(STAMP) ## the notebooks' setup cells on a simulated fresh Colab runtime (needs PyPI, ~3.5 min)
	LW_COLAB=1 $(PY) -m pytest -m colab tests/test_colab.py

demo: $(STAMP) ## render walks into outputs/ (MODEL=teaching, or MODEL=sd15 / sdxl / sdxl-turbo on a CUDA GPU) + executed notebooks
	$(PY) -m helpers.demo --model $(MODEL) --out outputs
	$(PY) tools/notebooks.py execute --backend $(if $(filter teaching,$(MODEL)),teaching,auto) --out outputs/notebooks

teaching-models: $(STAMP) ## retrain every teaching model from scratch (fixed seeds, a pool of 2 one-thread workers; 42 min measured on the AMD 2-core machine before the flow model, about 53 planned with it: see helpers/teaching/README.md)
	$(PY) -m helpers.teaching.train

bench: $(STAMP) ## helpers rendering vs one call per frame, side by side -> benchmarks/RESULTS.md; a 1,000-frame walk timed to music -> benchmarks/TIMELINE.md; teaching DDPM vs flow, ms a frame at batch 1 and 16 -> benchmarks/FLOW.md
	$(PY) -m benchmarks.bench --out benchmarks/RESULTS.md
	$(PY) -m benchmarks.timeline --out benchmarks/TIMELINE.md
	$(PY) -m benchmarks.flow --out benchmarks/FLOW.md

bench-morph: $(STAMP) ## morphing 10 image pairs: naive DDIM slerp vs each added technique -> benchmarks/MORPH.md (72 s measured)
	$(PY) -m benchmarks.morph --out benchmarks/MORPH.md

badges: $(STAMP) ## regenerate the notebooks' headers, Colab badges, setup cells and navigation
	$(PY) tools/notebooks.py write

strip: $(STAMP) ## remove outputs, execution counts and widget state from the notebooks
	$(PY) tools/notebooks.py strip

lab: $(STAMP) ## start JupyterLab in the venv
	$(VENV)/bin/jupyter lab notebooks

lock: $(STAMP) ## rewrite requirements/lock.txt from the current venv
	@{ sed -n '1,3p' requirements/lock.txt; $(PY) -m pip freeze --exclude-editable | grep -v -E '^torch=='; } > requirements/lock.new
	@mv requirements/lock.new requirements/lock.txt

clean: ## remove the venv, caches and outputs/
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis outputs *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
