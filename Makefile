# The two commands: `make run` starts the whole product; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app wsgi
CHROMIUM := /usr/bin/chromium

# Python keeps the bytecode it compiles, so each module is compiled once, by the first process
# that imports it (uv does not compile the whole lock up front, as pip does). Where
# PYTHONDONTWRITEBYTECODE is set, every process `make run` starts would compile all it
# imports again, each time.
unexport PYTHONDONTWRITEBYTECODE

# Compiled catalogues are built here, not committed.
CATALOGUES := $(patsubst %.po,%.mo,$(wildcard vcpay/translations/*/LC_MESSAGES/messages.po))

.PHONY: run run-prod test install lint format migrate seed reset-demo browser translations clean

# The supervisor is demo tooling beside the product (sandbox/demo.py); it never imports vcpay.
# Migrating and seeding in one process: each start of the application takes a second or two.
run: install
	$(FLASK) seed-demo --migrate
	$(BIN)/python -m sandbox.demo

# The production profile on this machine's PostgreSQL and Redis (README: Deploying): the
# checks and the database (deploy/prepare.py), the migrations once (the Procfile's `release`),
# then deploy/Procfile's web, two workers and beat, run by honcho. Settings come from the
# environment only; the defaults below are for this machine. Secrets are never generated:
# it refuses, naming each one to set.
WEB_INSTANCES ?= 2
WEB_PORT ?= 8000
run-prod: export VCPAY_ENV ?= production
run-prod: export VCPAY_LOG_FORMAT ?= json
run-prod: export VCPAY_BEAT_LOCK ?= true
run-prod: export VCPAY_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/vcpay
run-prod: export VCPAY_CELERY_BROKER_URL ?= redis://127.0.0.1:6379/0
run-prod: export VCPAY_REDIS_URL ?= redis://127.0.0.1:6379/1
run-prod: export VCPAY_WEB_HOST ?= 127.0.0.1
run-prod: export VCPAY_PUBLIC_URL ?= http://127.0.0.1:$(WEB_PORT)
run-prod: export PATH := $(CURDIR)/$(BIN):$(PATH)
run-prod: install
	$(BIN)/python deploy/prepare.py $(WEB_INSTANCES) $(WEB_PORT)
	$(BIN)/honcho --procfile deploy/Procfile --app-root . start release
	exec $(BIN)/honcho --procfile deploy/Procfile --app-root . start --port $(WEB_PORT) \
		--concurrency web=$(WEB_INSTANCES),worker=2 web worker beat

# pytest measures branch coverage and fails under the floor (fail_under in pyproject.toml), and
# lists the slowest tests, so a CI log shows where its time went.
test: install browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit -c pyproject.toml -q -r vcpay workers wsgi.py sandbox
	$(BIN)/pytest --cov --durations=40

install: $(STAMP) $(CATALOGUES)

# Reinstall only when the lock or the project file changes. uv, installed from PyPI into the
# venv (by the pip that came with Python), puts the lock in place in seconds; where it cannot
# be had or does not succeed (uv reads its own settings, UV_DEFAULT_INDEX and the like, not
# pip's), the venv gets pip of its own, which installs the same lock, slower.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv --without-pip $(VENV)
	test -x $(BIN)/uv || $(PYTHON) -m pip --python $(BIN)/python install --quiet 'uv>=0.5' \
		|| echo "uv could not be installed: pip installs instead (slower)."
	if test -x $(BIN)/uv && \
		$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.lock && \
		$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .; then :; \
	else \
		echo "Installing with pip." && \
		$(BIN)/python -m ensurepip --upgrade >/dev/null && \
		$(BIN)/python -m pip install --quiet --upgrade pip && \
		$(BIN)/python -m pip install --quiet -r requirements.lock && \
		$(BIN)/python -m pip install --quiet --no-deps -e .; \
	fi
	touch $(STAMP)

%.mo: %.po $(STAMP)
	$(BIN)/pybabel -q compile -i $< -o $@

# After changing user-facing strings: update the catalogues, then translate what is new.
translations: install
	$(FLASK) translations update

migrate: install
	$(FLASK) db upgrade

seed: install
	$(FLASK) seed-demo

# The demo afresh (with `make run` stopped): its data and the stand-ins' state deleted, then
# migrated and seeded again. It asks first, and refuses anything but the local demo.
reset-demo: install
	$(FLASK) reset-demo

# Browser tests drive Debian's Chromium; Playwright never downloads a browser here.
browser:
	@test -x $(CHROMIUM) || { \
		echo "Installing Chromium for the browser tests..."; \
		SUDO=$$(command -v sudo >/dev/null && [ "$$(id -u)" != 0 ] && echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache .coverage .coverage.*
	find vcpay/translations -name '*.mo' -delete
