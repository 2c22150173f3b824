"""The API documents in docs/api/ are what the code serves: a route, a schema or an event
changed without `make api-docs` fails here, so partners never read a stale contract."""

from __future__ import annotations

import json
from pathlib import Path

from relance.devstack import apidocs


def test_published_documents_are_what_the_code_serves():
    assert apidocs.stale_documents() == [], "run `make api-docs` and commit docs/api/"


def test_every_service_and_the_events_have_a_document():
    names = {path.name for path in apidocs.DOCS_DIR.glob("*.json")}
    assert names == {
        "asyncapi.json",
        "openapi-invoice-api.json",
        "openapi-scheduler.json",
        "openapi-notifier.json",
        "openapi-payment-matcher.json",
    }


def test_contract_paths_are_in_the_published_documents():
    def paths(name: str) -> set[str]:
        return set(json.loads((apidocs.DOCS_DIR / name).read_text())["paths"])

    assert {"/v1/invoices", "/v1/invoices/{invoice_id}/send", "/v1/partner-events"} <= paths(
        "openapi-invoice-api.json"
    )
    assert "/v1/plans/preview" in paths("openapi-scheduler.json")
    assert "/v1/webhook-deliveries/{delivery_id}/replay" in paths("openapi-notifier.json")
    assert "/v1/bank-statements" in paths("openapi-payment-matcher.json")
    for name in ("invoice-api", "scheduler", "notifier", "payment-matcher"):
        assert {"/healthz", "/readyz", "/metrics"} <= paths(f"openapi-{name}.json")


def test_a_changed_document_is_named_and_check_fails(tmp_path: Path, capsys):
    apidocs.write_documents(tmp_path)
    scheduler = tmp_path / "openapi-scheduler.json"
    document = json.loads(scheduler.read_text())
    del document["paths"]["/v1/plans/preview"]
    scheduler.write_text(apidocs.render(document))
    (tmp_path / "asyncapi.json").unlink()

    assert apidocs.stale_documents(tmp_path) == ["asyncapi.json", "openapi-scheduler.json"]
    assert apidocs.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "openapi-scheduler.json is out of date" in capsys.readouterr().err
    assert apidocs.main(["--dir", str(tmp_path)]) == 0
    assert apidocs.main(["--check", "--dir", str(tmp_path)]) == 0
