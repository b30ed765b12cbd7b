# Set-up and everyday tasks. On a fresh machine: `make migrate` then `make test`.
VENV ?= .venv
PYTHON ?= python3
# pytest-xdist workers of make test: many tests wait (on locks, timeouts, other processes) more than they compute
TEST_WORKERS ?= 3
OPS := $(VENV)/bin/ops
# Use $DB_URL, or the local cluster of .ops/ (started when needed) when it is unset.
WITH_DB = if [ -z "$$DB_URL" ]; then DB_URL=$$($(OPS) local-db url --start) || exit 1; export DB_URL; fi;

.PHONY: dist image setup postgres promtool chromium compose-tools migrate rollback rollback-all status refresh worker test check lint compatibility docs reliability-report bench bench-report clean

setup: $(VENV)/.installed

# pip's output goes to .ops/install.log, shown only when the install fails.
$(VENV)/.installed: setup.cfg pyproject.toml
	@mkdir -p .ops && echo "installing ops and its test dependencies into $(VENV) (log: .ops/install.log)"
	@{ $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q --upgrade pip \
		&& $(VENV)/bin/pip install -q -e '.[test]'; } > .ops/install.log 2>&1 || { cat .ops/install.log; exit 1; }
	@touch $@

postgres:
	@sh scripts/ensure-postgres.sh

migrate: setup
	@if [ -z "$$DB_URL" ]; then sh scripts/ensure-postgres.sh; fi
	@$(WITH_DB) $(OPS) db upgrade && $(OPS) db status

rollback: setup
	@$(WITH_DB) $(OPS) db rollback

rollback-all: setup
	@$(WITH_DB) $(OPS) db rollback --all --yes

status: setup
	@$(WITH_DB) $(OPS) db status

refresh: setup
	@$(WITH_DB) $(OPS) refresh

worker: setup
	@$(WITH_DB) $(OPS) worker

# Debian's tools that some tests run: promtool for the alerting rules, Chromium for the site's pages,
# docker-compose and podman (for podman-compose) to merge the compose overlay.
promtool:
	@sh scripts/ensure-debian-tool.sh promtool prometheus -- the alert rule tests

chromium:
	@sh scripts/ensure-debian-tool.sh chromedriver chromium chromium-driver -- the site browser test

compose-tools:
	@sh scripts/ensure-debian-tool.sh docker-compose docker-compose -- the overlay docker-compose test
	@sh scripts/ensure-debian-tool.sh podman podman -- the overlay podman-compose test

# Every test; then each command's Spec.sql is checked against the files it ran (tests/spec_sql.py).
test: setup postgres promtool chromium compose-tools
	OPS_CHECK_SPEC_SQL=1 $(VENV)/bin/pytest -n $(TEST_WORKERS) --dist worksteal

# The inner loop (about 2 minutes): lint, then every test not marked slow (tests/conftest.py says which are).
check: lint postgres
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal -m "not slow"

lint: setup
	$(VENV)/bin/ruff check ops tests bench scripts
	$(VENV)/bin/ruff format --check ops tests bench scripts
	$(VENV)/bin/mypy

reliability-report: setup postgres
	OPS_TEST_FULL=1 $(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist worksteal tests/reliability
	$(VENV)/bin/python -m scripts.reliability_report

compatibility: setup postgres
	OPS_WRITE_COMPATIBILITY=1 $(VENV)/bin/pytest -q tests/test_compatibility.py

# The site (MkDocs, strict: a warning or a broken link or anchor fails it), after rewriting its generated
# parts: the command reference from --help, the module map of docs/development.md.
docs: setup
	$(VENV)/bin/python -m scripts.cli_reference
	$(VENV)/bin/python -m scripts.dev_guide
	$(VENV)/bin/mkdocs build --strict --quiet

bench: setup postgres
	@mkdir -p .ops && $(VENV)/bin/pip install -q -e '.[test,bench]' > .ops/bench-install.log 2>&1 \
		|| { cat .ops/bench-install.log; exit 1; }
	$(VENV)/bin/python -m bench
	$(VENV)/bin/python -m bench.report

bench-report: setup
	@mkdir -p .ops && $(VENV)/bin/pip install -q -e '.[test,bench]' > .ops/bench-install.log 2>&1 \
		|| { cat .ops/bench-install.log; exit 1; }
	$(VENV)/bin/python -m bench.report

clean:
	rm -rf $(VENV) build *.egg-info

# The image, labelled with the package's version (ops/__init__.py, the one place it is written).
image:
	docker build --build-arg VERSION=$$(sed -n 's/^__version__ = "\(.*\)"/\1/p' ops/__init__.py) -t panoramax-ops .

# The wheel and the sdist in dist/ (the build tool comes with the set-up; pyproject-build, not `python -m
# build`, which a checkout's build/ folder would shadow).
dist: setup
	rm -rf dist && $(VENV)/bin/pyproject-build --no-isolation --outdir dist .
