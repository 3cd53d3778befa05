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

.PHONY: help venv lab-up lab-down lab-status test test-fast lint typecheck bench clean release autograde

help:
	@echo "make lab-up      start the lab (LAB_BACKEND=auto|local|kind)"
	@echo "make lab-down    stop it; nothing is left running"
	@echo "make test        install what is missing and run the tests"
	@echo "make lint        ruff and mypy"
	@echo "make bench       the performance scripts in benchmarks/"
	@echo "make release     regenerate the student notebooks (notebooks/) from solutions/notebooks/"
	@echo "make autograde   grade SUBMISSIONS=dir of notebooks, each in its own lab, into GRADES=csv"

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

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_lab.py

release: $(STAMP)
	$(BIN)/python -m trafficlab.course release

autograde: $(STAMP)
	$(BIN)/python -m trafficlab.course autograde $(SUBMISSIONS) --out $(GRADES) --jobs $(JOBS)

clean:
	rm -rf $(VENV) .lab .pytest_cache
