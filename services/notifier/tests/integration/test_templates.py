"""An organization words its own emails: checked when saved, previewed, then used."""

from __future__ import annotations

from relance.common.events.types import StepKind


async def test_the_wording_in_use_is_the_built_in_one_until_overridden(api):
    answer = await api.get("/v1/templates/fr/escalation_3")
    assert answer.status_code == 200
    template = answer.json()
    assert template["overridden"] is False
    assert "Mise en demeure" in template["subject"]
    assert "{{ balance }}" in template["body"]


async def test_a_draft_is_previewed_with_sample_data(api):
    answer = await api.post(
        "/v1/templates/en/due/preview",
        json={
            "subject": "Invoice {{ number }}",
            "body": "Hi {{ customer }},\n\n{{ balance }} due.",
        },
    )
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["subject"] == "Invoice FA-2026-0042"
    assert preview["text"] == "Hi Boulangerie Martin,\n\n€700.50 due.\n"
    assert "<p>Hi Boulangerie Martin,</p>" in preview["html"]


async def test_a_template_that_does_not_render_is_refused_with_its_line(api):
    for body, line, words in (
        ("Hello\n\n{% if balance %}\nunclosed", 3, "endif"),
        ("Hello\n{{ nonsense_variable }}", 2, "nonsense_variable"),
        ("{{ number.__class__.__mro__ }}", 1, "unsafe"),
    ):
        answer = await api.put("/v1/templates/fr/due", json={"subject": "S", "body": body})
        assert answer.status_code == 422, body
        [problem] = answer.json()["detail"]
        assert problem["loc"] == ["body", "body"]
        assert problem["line"] == line
        assert words in problem["msg"]
    assert (await api.get("/v1/templates/fr/due")).json()["overridden"] is False


async def test_unknown_kinds_and_languages_are_404_or_422(api):
    assert (await api.get("/v1/templates/de/due")).status_code == 422
    assert (await api.get("/v1/templates/fr/final")).status_code == 422
    assert (await api.get("/v1/templates/fr/due", headers={"Authorization": ""})).status_code == 401


async def test_a_saved_template_words_the_next_email_and_a_reset_restores_the_default(
    notifier, api, mail_catcher
):
    saved = await api.put(
        "/v1/templates/fr/escalation_1",
        json={"subject": "Votre facture {{ number }}", "body": "Reste dû : {{ balance }}."},
    )
    assert saved.status_code == 200, saved.text
    assert (await api.get("/v1/templates/fr/escalation_1")).json()["overridden"] is True
    invoice = await notifier.invoice()
    await notifier.apply(notifier.due(invoice, StepKind.ESCALATION_1))
    await notifier.send_all()
    assert (await api.delete("/v1/templates/fr/escalation_1")).status_code == 204
    await notifier.apply(notifier.due(invoice, StepKind.ESCALATION_1))
    await notifier.send_all()

    first, second = mail_catcher.messages()
    assert first["Subject"] == "Votre facture FA-2026-0042"
    assert "Reste dû : 1" in first.get_body(("plain",)).get_content()
    assert second["Subject"] == "Relance : facture FA-2026-0042 impayée"


async def test_a_template_holding_unstorable_text_is_refused_and_not_saved(api):
    # a lone surrogate and a NUL, as JSON escapes (a client's encoder may refuse to send
    # the surrogate itself): PostgreSQL can store neither
    for escape in ("\\udace", "\\u0000"):
        for part in ("subject", "body"):
            fields = {"subject": '"Facture {{ number }}"', "body": '"Reste du"'}
            fields[part] = f'"x{escape}y {{{{ number }}}}"'
            body = f'{{"subject": {fields["subject"]}, "body": {fields["body"]}}}'
            answer = await api.put(
                "/v1/templates/fr/escalation_1",
                content=body.encode(),
                headers={"content-type": "application/json"},
            )
            assert answer.status_code == 422, (escape, part, answer.text)
            assert answer.json()["detail"][0]["loc"] == ["body", part]
    assert (await api.get("/v1/templates/fr/escalation_1")).json()["overridden"] is False


async def test_a_subject_without_the_invoice_number_is_refused_saying_why(api):
    for subject in ("Votre facture", "Facture {{ number | lower }}", "{{ customer }}"):
        for path in ("/v1/templates/fr/due", "/v1/templates/fr/due/preview"):
            answer = await api.request(
                "PUT" if path.endswith("due") else "POST",
                path,
                json={"subject": subject, "body": "Reste dû : {{ balance }}."},
            )
            assert answer.status_code == 422, (subject, path, answer.text)
            [problem] = answer.json()["detail"]
            assert problem["loc"] == ["body", "subject"]
            assert "{{ number }}" in problem["msg"]
    assert (await api.get("/v1/templates/fr/due")).json()["overridden"] is False


async def test_a_subject_with_the_number_written_without_spaces_is_saved(api):
    answer = await api.put(
        "/v1/templates/fr/due", json={"subject": "Facture {{number}}", "body": "Reste dû."}
    )
    assert answer.status_code == 200, answer.text
    assert (await api.get("/v1/templates/fr/due")).json()["subject"] == "Facture {{number}}"


async def test_a_refused_draft_is_answered_as_a_problem_like_every_refusal(api):
    """The wording's 422s are application/problem+json documents, as every service's
    refusals are, and keep the detail that names the part (and the line)."""
    for draft, loc in (
        ({"subject": "Invoice {{ number }}", "body": "{% if balance %}"}, ["body", "body"]),
        ({"subject": "Invoice", "body": "Hello"}, ["body", "subject"]),
    ):
        answer = await api.post("/v1/templates/fr/due/preview", json=draft)
        assert answer.status_code == 422, draft
        assert answer.headers["content-type"] == "application/problem+json"
        assert [p["loc"] for p in answer.json()["detail"]] == [loc]
