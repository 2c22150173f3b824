"""A 2xx means the change is saved: a write whose transaction fails at COMMIT, after the route
did all its work, answers an error, and nothing of it is recorded or announced."""

from __future__ import annotations

import asyncpg
import pytest

from relance.common.db import asyncpg_dsn
from relance.devstack.testing import fail_at_commit


def database_url(api) -> str:
    url: str = api.app.state.runtime.database.url
    return url


async def outbox_types(api) -> list[str]:
    connection = await asyncpg.connect(asyncpg_dsn(database_url(api)))
    try:
        rows = await connection.fetch("SELECT headers FROM outbox")
    finally:
        await connection.close()
    return [str(row["headers"]) for row in rows]


async def test_a_customer_whose_commit_fails_is_a_503_to_retry_and_is_not_there(api):
    await api.as_new_organization()
    await fail_at_commit(database_url(api), "customers", sqlstate="40001")

    answer = await api.post("/v1/customers", {"name": "Boulangerie Martin"})

    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert "nothing was saved" in answer.json()["detail"]
    assert (await api.get("/v1/customers")).json()["items"] == []


@pytest.mark.parametrize(
    ("sqlstate", "status"),
    [
        ("40001", 503),  # serialization failure: retry
        ("40P01", 503),  # chosen as a deadlock victim: retry
        (None, 503),  # the server process ended at commit: the connection is lost
        ("23514", 409),  # a deferred check refused the change: a retry would be refused too
    ],
)
async def test_a_payment_whose_commit_fails_is_an_error_with_no_payment_and_no_event(
    api, sqlstate, status
):
    await api.as_new_organization()
    invoice = await api.sent_invoice()
    before = await outbox_types(api)
    await fail_at_commit(database_url(api), "payments", sqlstate=sqlstate)

    answer = await api.post(
        f"/v1/invoices/{invoice['id']}/payments", {"amount": "200.00", "paid_on": "2026-03-03"}
    )

    assert answer.status_code == status, answer.text
    seen = (await api.get(f"/v1/invoices/{invoice['id']}")).json()
    assert seen["paid"] == "0.00"
    assert seen["balance"] == "1200.00"
    assert seen["status"] == "not_due"
    assert not [h for h in await outbox_types(api) if "payment.reported" in h]
    assert len(await outbox_types(api)) <= len(before)


async def test_an_organization_whose_commit_fails_gives_no_key(api):
    await fail_at_commit(database_url(api), "organizations", sqlstate="40001")

    answer = await api.client.post(
        "/v1/organizations", json={"name": "Atelier"}, headers={"X-Admin-Token": "test-admin-token"}
    )

    assert answer.status_code == 503
    assert "api_key" not in answer.text
