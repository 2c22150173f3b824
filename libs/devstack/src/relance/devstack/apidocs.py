"""The published API documents: the OpenAPI document of each service and the AsyncAPI document
of every topic, written to ``docs/api/`` from the code that serves them.

``python -m relance.devstack.apidocs`` (``make api-docs``) writes them; ``--check`` writes
nothing and exits 1 naming each document that is not what the code would write, which is
what the test suite runs so that a route or an event changed without its document fails.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from relance.common.events.asyncapi import asyncapi_document
from relance.devstack.stack import SERVICES

ROOT = Path(__file__).resolve().parents[5]
DOCS_DIR = ROOT / "docs" / "api"


def openapi_document(service_package: str) -> dict[str, Any]:
    """The OpenAPI document the service serves at ``/openapi.json``: built from its routes,
    with the settings' defaults (nothing is connected to)."""
    from relance.common.service import create_app

    spec = importlib.import_module(f"{service_package}.app").SPEC
    # the settings' defaults, not the environment's: the documents are the same everywhere
    document: dict[str, Any] = create_app(spec, spec.settings_cls.model_construct()).openapi()
    return document


def documents() -> dict[str, dict[str, Any]]:
    """Every published document by its file name under ``docs/api/``."""
    found = {"asyncapi.json": asyncapi_document()}
    for service in SERVICES:
        found[f"openapi-{service.name}.json"] = openapi_document(service.package)
    return found


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def stale_documents(directory: Path = DOCS_DIR) -> list[str]:
    """The names of the documents whose file is missing or differs from what the code says."""
    stale = []
    for name, document in documents().items():
        path = directory / name
        if not path.exists() or path.read_text(encoding="utf-8") != render(document):
            stale.append(name)
    return stale


def write_documents(directory: Path = DOCS_DIR) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in documents().items():
        (directory / name).write_text(render(document), encoding="utf-8")
        written.append(name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m relance.devstack.apidocs",
        description="Write the OpenAPI document of each service and the AsyncAPI document of "
        "the events to docs/api/, from the code.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a document differs from what the code would write",
    )
    parser.add_argument(
        "--dir", type=Path, default=DOCS_DIR, help=f"where the documents live (default: {DOCS_DIR})"
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_documents(args.dir)
        for name in stale:
            print(f"{args.dir / name} is out of date: run `make api-docs`", file=sys.stderr)
        return 1 if stale else 0
    for name in write_documents(args.dir):
        print(f"wrote {args.dir / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
