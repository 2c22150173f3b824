"""A 2xx means the change is saved: a notifier write whose transaction fails at COMMIT
answers an error, and nothing of it is kept."""

from __future__ import annotations

from sqlalchemy import text

from relance.devstack.testing import fail_at_commit


async def count(notifier, table: str) -> int:
    async with notifier.database.transaction() as session:
        found: int = await session.scalar(text(f"SELECT count(*) FROM {table}"))  # noqa: S608
        return found


async def test_a_webhook_endpoint_whose_commit_fails_is_a_503_and_gives_no_secret(notifier, api):
    await fail_at_commit(notifier.database.url, "webhook_endpoints", sqlstate="40001")

    answer = await api.post(
        "/v1/webhook-endpoints",
        json={"url": "https://books.partner.example/hooks", "events": ["invoice.sent"]},
    )

    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"] == "1"
    assert "secret" not in answer.text
    assert await count(notifier, "webhook_endpoints") == 0
    assert (await api.get("/v1/webhook-endpoints")).json()["items"] == []


async def test_a_template_override_whose_connection_is_lost_at_commit_is_not_kept(notifier, api):
    await fail_at_commit(notifier.database.url, "template_overrides")

    answer = await api.put(
        "/v1/templates/fr/escalation_1",
        json={"subject": "Relance : facture {{ number }}", "body": "Merci de régler {{ number }}."},
    )

    assert answer.status_code == 503, answer.text
    assert await count(notifier, "template_overrides") == 0
