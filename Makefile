# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
FERRETDB := $(CURDIR)/.cache/ferretdb/ferretdb-v1.24.2

.PHONY: demo test bench schema install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/catalog-gateway demo

$(FERRETDB):
	bash scripts/install-ferretdb.sh $(FERRETDB)

# MONGODB_URI, when set, points the real-server tests at that MongoDB instead of FerretDB.
test: $(VENV)/.installed $(if $(MONGODB_URI),,$(FERRETDB))
	FERRETDB_BIN=$(FERRETDB) $(PY) -m pytest

bench: $(VENV)/.installed $(FERRETDB)
	FERRETDB_BIN=$(FERRETDB) $(PY) -m bench.ingest

schema: $(VENV)/.installed
	$(VENV)/bin/catalog-gateway export-schema > schema.graphql

clean:
	rm -rf $(VENV) .cache .pytest_cache
