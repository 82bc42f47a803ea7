# The two commands of the README: `make run` serves the system, `make test` tests it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements-installed

CHROMIUM ?= /usr/bin/chromium
NGINX ?= /usr/sbin/nginx

.PHONY: run test test-deploy lint bench bench-connects clean train-extractor eval-extractor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m paperpipeline.launcher

# Browser tests drive Debian's Chromium (never a downloaded browser); install it when it is missing.
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The deployment test (tests/deploy) runs Debian's nginx in front of the system; install it when it is missing.
# Only the binary is used: the test runs it in the foreground with a configuration of its own under a temp folder.
$(NGINX):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx

test: $(STAMP) $(CHROMIUM) $(NGINX)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The deployment recipe alone (docs/deployment.md): also part of `make test`.
test-deploy: $(STAMP) $(NGINX)
	$(BIN)/python -m pytest tests/deploy $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py

# /ws/papers connects on Daphne and on uvicorn beside the raw ceiling (bench/connect_servers.py; about 5 minutes).
bench-connects: $(STAMP)
	$(BIN)/python -m bench.connect_servers

# The learned extractor (docs/extraction.md): retrain the shipped model from data/scirex/ (deterministic, about
# ten minutes on one core), and measure it on the held-out documents (prints the table; WRITE=1 updates the docs).
train-extractor: $(STAMP)
	$(BIN)/python -m papers.pipeline.learned.train

eval-extractor: $(STAMP)
	DJANGO_SETTINGS_MODULE=paperpipeline.settings $(BIN)/python -m papers.pipeline.learned.evaluate $(if $(WRITE),--write)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

clean:
	rm -rf var/test_db.sqlite3* .pytest_cache
