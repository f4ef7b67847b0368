# The two commands of the quick start. Both bootstrap .venv themselves (idempotent, fast when done).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
NEWMAN := postman/node_modules/.bin/newman
CONFIG ?= config.toml

.PHONY: serve test test-fast docs newman nginx chromium screenshots bench lock clean

# `make serve` installs the runtime only; `make test` adds the test tools (a second stamp).
$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade "pip>=23"
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(TEST_STAMP)

serve: $(STAMP)
	@echo "The ingest CLI: source $(VENV)/bin/activate (or run $(CURDIR)/$(BIN)/ingest)"
	INGEST_AUTH_OPEN_TOKEN_ENDPOINT=$${INGEST_AUTH_OPEN_TOKEN_ENDPOINT:-true} \
		$(BIN)/ingest-server --config $(CONFIG)

test: $(TEST_STAMP) newman nginx chromium
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Everything but the tests marked browser, replicas or slow (markers: tests/conftest.py), in two
# pytest-xdist workers (one per core here; each worker has its own test database).
test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -n 2 -m "not browser and not replicas and not slow" $(PYTEST_ARGS)

# The documentation site (mkdocs.yml, docs/), strict: a broken link fails. tests/test_docs.py
# builds it too, so `make test` checks it.
docs: $(TEST_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# newman (runs the Postman collection in tests/test_postman.py), pinned by postman/package-lock.json.
# Without npm this only says so: that test skips itself and the rest of `make test` runs as usual.
newman:
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(NEWMAN); \
	else echo "npm not found: the Postman collection test will be skipped"; fi

# nginx (Debian's package) is the load balancer of the replica tests (tests/test_replicas.py).
nginx:
	@command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx || \
		{ apt-get update && apt-get install -y --no-install-recommends nginx; }

$(NEWMAN): postman/package.json postman/package-lock.json
	npm ci --prefix postman --no-audit --no-fund --loglevel=error
	touch $(NEWMAN)

# Debian's Chromium for the console's browser tests (tests/test_console.py): Playwright drives it,
# since Playwright's own browser download cannot be used here. Installed once when missing (root).
chromium:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q chromium; }

# The console's screenshots (docs/screenshots, shown by the README and docs/console.md), taken
# by its browser tests against a real server, then compressed with pngquant (kept < 150 KB).
screenshots: $(TEST_STAMP) chromium
	@command -v pngquant >/dev/null 2>&1 || { apt-get update -q && apt-get install -y -q pngquant; }
	rm -rf $(VENV)/screenshots
	INGEST_SCREENSHOTS=$(VENV)/screenshots $(BIN)/python -m pytest -q \
		tests/test_console.py tests/test_console_new_user.py
	pngquant --force --strip --quality 50-90 --ext .png $(VENV)/screenshots/*.png
	cp $(VENV)/screenshots/*.png docs/screenshots/

# Every benchmark in one run and one table (bench/bench_all.py); BENCH_ARGS=--sweep also redraws
# the docs' charts, BENCH_ARGS=--quick is shorter.
bench: $(TEST_STAMP)
	$(BIN)/python bench/bench_all.py $(BENCH_ARGS)

# Re-pin constraints.txt from the current venv (after changing dependencies in pyproject.toml).
lock: $(TEST_STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis postman/node_modules build/site
