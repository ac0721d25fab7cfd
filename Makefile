# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint chromium bench schema install clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,lint]'
	touch $@

install: $(VENV)/.installed

# make demo PORT=8123 (default: GATEWAY_PORT, else 8000; PORT=0 picks a free port)
demo: $(VENV)/.installed
	$(VENV)/bin/catalog-gateway demo $(if $(PORT),--port $(PORT))

# The real-server tests start their own SecantusDB (test extra); MONGODB_URI points them at a MongoDB instead.
test: lint chromium
	$(PY) -m pytest

# The browser tests (tests/browser) drive Debian's chromium, never a browser Playwright downloads:
# installed here when /usr/bin/chromium is missing (with sudo when not root).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "make test: /usr/bin/chromium is missing; installing Debian's chromium package for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

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
