"""Organizations (admin token, API key shown once) and customers, with their validation."""

from __future__ import annotations

import pytest


async def test_creating_an_organization_needs_the_admin_token(api):
    missing = await api.client.post("/v1/organizations", json={"name": "X"})
    wrong = await api.client.post(
        "/v1/organizations", json={"name": "X"}, headers={"X-Admin-Token": "guess"}
    )
    assert missing.status_code == wrong.status_code == 401


async def test_an_organization_gets_defaults_and_an_api_key_shown_once(api):
    org = await api.as_new_organization()
    assert org["country"] == "FR"
    assert org["timezone"] == "Europe/Paris"
    assert org["locale"] == "fr"
    assert org["reminder_time"] == "09:00"
    assert org["api_key"].startswith("rk_")
    assert (await api.get("/v1/customers")).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("country", "XX"),
        ("timezone", "Mars/Olympus"),
        ("locale", "de"),
        ("reminder_time", "25:00"),
        ("reminder_time", "9h"),
        ("sender_email", "not-an-address"),
        ("name", ""),
        ("name", "x" * 201),
        ("unexpected", 1),
    ],
)
async def test_organization_fields_are_validated(api, field, value):
    answer = await api.client.post(
        "/v1/organizations",
        json={"name": "Atelier", field: value},
        headers={"X-Admin-Token": "test-admin-token"},
    )
    assert answer.status_code == 422
    assert field in str(answer.json()["detail"])


async def test_calls_without_a_valid_api_key_are_refused(api):
    assert (await api.client.get("/v1/customers")).status_code == 401
    bad = await api.client.get("/v1/customers", headers={"Authorization": "Bearer rk_nope"})
    assert bad.status_code == 401
    basic = await api.client.get("/v1/customers", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401


async def test_a_customer_keeps_its_email_language_and_normalized_ibans(api):
    await api.as_new_organization()
    customer = await api.customer(
        locale="en", ibans=["fr76 3000 6000 0112 3456 7890 189"], external_id="C-1"
    )
    assert customer["ibans"] == ["FR7630006000011234567890189"]
    assert customer["locale"] == "en"
    fetched = await api.get(f"/v1/customers/{customer['id']}")
    assert fetched.json() == customer


@pytest.mark.parametrize(
    "body",
    [
        {"name": "M", "email": "martin@"},
        {"name": "M", "ibans": ["FR7630006000011234567890188"]},  # wrong check digits
        {"name": "M", "locale": "es"},
        {"name": ""},
        {"name": "M", "ibans": ["FR7630006000011234567890189"] * 11},
        {"email": "a@b.example"},
    ],
)
async def test_customer_fields_are_validated(api, body):
    await api.as_new_organization()
    assert (await api.post("/v1/customers", body)).status_code == 422


async def test_an_external_id_names_one_customer_only(api):
    await api.as_new_organization()
    await api.customer(external_id="C-1")
    again = await api.post("/v1/customers", {"name": "Other", "external_id": "C-1"})
    assert again.status_code == 409


async def test_customers_are_listed_newest_first_page_by_page(api):
    await api.as_new_organization()
    created = []
    for n in range(5):
        api.clock.advance(__import__("datetime").timedelta(seconds=1))
        created.append((await api.customer(name=f"Client {n}"))["id"])
    first = (await api.get("/v1/customers", limit=2)).json()
    second = (await api.get("/v1/customers", limit=2, cursor=first["next_cursor"])).json()
    third = (await api.get("/v1/customers", limit=2, cursor=second["next_cursor"])).json()
    listed = [c["id"] for page in (first, second, third) for c in page["items"]]
    assert listed == created[::-1]
    assert third["next_cursor"] is None


async def test_a_customer_change_is_kept(api):
    await api.as_new_organization()
    customer = await api.customer()
    changed = await api.patch(f"/v1/customers/{customer['id']}", {"email": "new@martin.example"})
    assert changed.status_code == 200
    assert changed.json()["email"] == "new@martin.example"
    assert changed.json()["name"] == customer["name"]
