# cplugins: one-command set-up, demo, tests and wheels. Every target is idempotent.
# `make demo` / `make test` create .venv and install the pinned stack when needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
CONSTRAINTS := requirements/constraints.txt
# Plugin distributions: one folder each, each with its own pyproject.toml.
PLUGINS := necks/augfpn $(sort $(dir $(wildcard backbones/*/pyproject.toml heads/*/pyproject.toml losses/*/pyproject.toml datasets/*/pyproject.toml)))
STAMP  := $(VENV)/.cplugins-installed
NPROC  := $(shell nproc 2>/dev/null || echo 2)
# pytest-xdist workers for `make test` (whole files per worker; at most 4: each holds a stack)
TEST_WORKERS ?= $(shell n=$(NPROC); [ $$n -gt 4 ] && n=4; echo $$n)

.PHONY: install demo test lint wheels clean docs

install: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The order matters (see requirements/constraints.txt for why each pin exists):
# 1. setuptools with pkg_resources, and torch's CPU wheel, before anything that depends on torch;
# 2. mmcv 2.1.0 built from its sdist against that torch (about 6 min once; pip caches the wheel);
# 3. torchvision without its CUDA dependencies, then the rest of the stack;
# 4. cplugins and the plugin distributions, editable.
$(STAMP): $(BIN)/python $(CONSTRAINTS) requirements/stack.txt pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PIP) install -q -c $(CONSTRAINTS) setuptools wheel pip
	$(PIP) install -q -c $(CONSTRAINTS) torch
	$(PIP) install -q -c $(CONSTRAINTS) -r requirements/mmcv-build.txt
	MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS=$(NPROC) $(PIP) install -q -c $(CONSTRAINTS) --no-build-isolation mmcv
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps torchvision
	$(PIP) install -q -c $(CONSTRAINTS) -r requirements/stack.txt
	$(PIP) install -q -c $(CONSTRAINTS) --no-deps --no-build-isolation -e . $(addprefix -e ,$(PLUGINS))
	$(BIN)/python -c "import cplugins.compat; cplugins.compat.apply(); import cplugins.all, mmcv.ops, mmdet.models; print('stack ok')"
	touch $@

demo: $(STAMP)
	$(BIN)/python tools/demo.py --work-dir work_dirs/demo

# pytest exits 5 when it collected no test: that means the suite is broken, say so.
test: $(STAMP)
	@$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5)"; exit 1; fi; exit $$rc

# ruff, and the layer contract (.importlinter; tests/test_layers.py runs it in `make test` too)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --config .importlinter

wheels: $(STAMP)
	$(PIP) wheel -q --no-deps --no-build-isolation -w dist . $(PLUGINS)
	@ls dist

# the documentation site (mkdocs.yml, docs/) into site/; --strict: a broken link fails it
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict -d site

clean:
	rm -rf $(VENV) dist build work_dirs *.egg-info */*/*.egg-info
