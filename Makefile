# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint bench schema install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/catalog-gateway demo

# The real-server tests start their own SecantusDB (test extra); MONGODB_URI points them at a MongoDB instead.
test: $(VENV)/.installed
	$(PY) -m pytest

# docs/benchmarks.md: the ingest (in-memory stores), then the Mongo path on one SecantusDB (MONGODB_URI: on
# that MongoDB instead). Sizes and cases, e.g. make bench MONGO_ARGS='--sizes 10000,100000' INGEST_ARGS='--sizes 10000'
bench: $(VENV)/.installed
	$(PY) -m bench.ingest $(INGEST_ARGS)
	$(PY) -m bench.mongo $(MONGO_ARGS)

schema: $(VENV)/.installed
	$(VENV)/bin/catalog-gateway export-schema > schema.graphql

clean:
	rm -rf $(VENV) .cache .pytest_cache
