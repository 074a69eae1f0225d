# Hub24: two commands for everything — `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENDOR_STAMP := static/vendor/.installed

.PHONY: run test bench setup vendor migrate lint clean help browser-deps

help:
	@echo "make run    - set up, start everything (embedded PostgreSQL/Redis when DATABASE_URL/REDIS_URL are unset), print the URL"
	@echo "make test   - set up, run the test suite against real PostgreSQL and Redis"
	@echo "make bench  - run the benchmarks (prints ratios)"

setup: $(STAMP) vendor

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $(STAMP)

# Front-end packages from the npm registry into static/vendor, when Node is present.
vendor: $(VENDOR_STAMP)

$(VENDOR_STAMP): package.json
	@if command -v npm >/dev/null 2>&1; then \
		npm install --silent --no-audit --no-fund && \
		mkdir -p static/vendor && \
		cp node_modules/echarts/dist/echarts.min.js static/vendor/ && \
		cp node_modules/@bitrix24/b24jssdk/dist/umd/index.min.js static/vendor/b24jssdk.min.js && \
		touch $(VENDOR_STAMP); \
	else echo "npm not found: charts and the Bitrix24 JS SDK will be missing from static/vendor"; fi

run: setup
	$(BIN)/python -m devtools.run

test: setup browser-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Headless Chromium for the browser tests (tests/browser), from Debian's packages; never a downloaded build.
browser-deps:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium and chromium-driver (apt-get) for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
			|| echo "apt-get could not install chromium: the browser tests will be skipped"; \
	else echo "no /usr/bin/chromium and no apt-get (as root) to install it: the browser tests will be skipped"; fi

bench: setup
	$(BIN)/python -m pip install --quiet -r requirements-bench.txt
	$(BIN)/python -m bench

migrate: setup
	$(BIN)/flask --app wsgi db upgrade

clean:
	rm -rf var/run var/test static/vendor
