# Entry points of Relance. Everything runs from the project's own virtual environment,
# created on first use from constraints.txt (every third-party version pinned).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DISTS := libs/common libs/devstack services/invoice-api services/scheduler services/notifier services/payment-matcher

.PHONY: help install dev test lint format bench api-docs clean-data up down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): constraints.txt requirements-dev.txt $(addsuffix /pyproject.toml,$(DISTS))
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Relance needs Python 3.11 or newer (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt \
		-r requirements-dev.txt $(addprefix -e ,$(DISTS))
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install every distribution (editable) and the dev tools

dev: $(STAMP) ## run the whole system on the embedded stack, in the foreground (Ctrl-C stops it)
	$(BIN)/relance-dev

test: $(STAMP) lint ## lint, then run every test against real PostgreSQL, broker and SMTP
	$(BIN)/pytest

lint: $(STAMP) ## ruff (lint and format check) and mypy on the whole tree
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP) ## run the benchmarks and print their figures (see BENCHMARKS.md)
	$(BIN)/python -m benchmarks

api-docs: $(STAMP) ## write docs/api/ (OpenAPI of each service, AsyncAPI of the events) from the code
	$(BIN)/python -m relance.devstack.apidocs

up: ## build the images and start the whole system on docker compose (Kafka, PostgreSQL, Mailpit)
	docker compose up --build --detach
	docker compose ps

down: ## stop the docker compose system; its data volumes stay (docker compose down -v deletes them)
	docker compose down

clean-data: ## delete the embedded stack's data (.relance/): databases, caught mails, logs
	rm -rf .relance
