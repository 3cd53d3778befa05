# TrafficLab: `make lab-up` runs the lab, `make test` runs the tests. Both set up what is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAB_BACKEND ?= auto
SUBMISSIONS ?= submitted
GRADES ?= grades.csv
JOBS ?= 2
STAMP := $(VENV)/.installed

.PHONY: help venv lab-up lab-down lab-status test test-fast lint golden-check bench clean release autograde

help:
	@echo "make lab-up      start the lab (LAB_BACKEND=auto|local|kind)"
	@echo "make lab-down    stop it; nothing is left running"
	@echo "make test        install what is missing and run the tests"
	@echo "make lint        ruff and mypy (strict)"
	@echo "make golden-check  rewrite the golden files from the code and fail if git sees a change"
	@echo "make bench       the performance scripts in benchmarks/"
	@echo "make release     regenerate notebooks/ from solutions/notebooks/; build the student bundle release/student/"
	@echo "make autograde   grade SUBMISSIONS=dir of notebooks under bubblewrap, into GRADES=csv (NO_SANDBOX=1: unsandboxed)"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

lab-up: $(STAMP)
	@if [ "$(LAB_BACKEND)" != local ]; then $(BIN)/python -m pip install --quiet -e '.[kind]'; fi
	$(BIN)/trafficlab up --backend $(LAB_BACKEND)

lab-down: $(STAMP)
	$(BIN)/trafficlab down

lab-status: $(STAMP)
	$(BIN)/trafficlab status

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy trafficlab taskapi

# Golden files must be what the code produces now: regenerate them into the tree, compare with a
# copy taken before (no git needed), and put the copy back so a stale file shows as a diff.
golden-check: $(STAMP)
	@rm -rf .golden-before && cp -r tests/testdata .golden-before
	$(BIN)/python -m pytest -q -p no:cacheprovider --update-golden tests/test_translate.py tests/test_envoy_render.py
	@if diff -r .golden-before tests/testdata; then rm -rf .golden-before; \
	else rm -rf tests/testdata && mv .golden-before tests/testdata; \
	  echo "golden files are stale: run 'pytest --update-golden' and review the diff"; exit 1; fi

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_lab.py

release: $(STAMP)
	$(BIN)/python -m trafficlab.course release

autograde: $(STAMP)
	$(BIN)/python -m trafficlab.course autograde $(SUBMISSIONS) --out $(GRADES) --jobs $(JOBS) $(if $(NO_SANDBOX),--no-sandbox)

clean:
	rm -rf $(VENV) .lab .pytest_cache
