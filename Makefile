# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench schema install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,lint]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/catalog-gateway demo

# The real-server tests start their own SecantusDB (test extra); MONGODB_URI points them at a MongoDB instead.
test: lint
	$(PY) -m pytest

# ruff lints everything; mypy is strict on the app packages (bulk, catalog_store, gateway: pyproject).
# No `ruff format --check`: the code keeps its hand-aligned style, and reformatting would rewrite
# 99 of 134 files (about 5,000 lines) for no behaviour, burying history and every open branch in conflicts.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# docs/benchmarks.md: the ingest (in-memory stores), the Mongo path on one SecantusDB (MONGODB_URI: on
# that MongoDB instead), then the reads (gateway against a raw endpoint). Sizes and cases, e.g.
# make bench MONGO_ARGS='--sizes 10000,100000' INGEST_ARGS='--sizes 10000' READS_ARGS='--million'
bench: $(VENV)/.installed
	$(PY) -m bench.ingest $(INGEST_ARGS)
	$(PY) -m bench.mongo $(MONGO_ARGS)
	$(PY) -m bench.reads $(READS_ARGS)

schema: $(VENV)/.installed
	$(VENV)/bin/catalog-gateway export-schema > schema.graphql

clean:
	rm -rf $(VENV) .cache .pytest_cache
