"""Every step kind in French and English: complete, quoting the facts, firmer with severity."""

from __future__ import annotations

import dataclasses

import pytest

from relance.common.events.types import StepKind
from relance.notifier.email.rendering import (
    LATE_STEPS,
    SAMPLE,
    SAMPLE_TODAY,
    language_for,
    render_mail,
)

# the facts a template preview shows: what these tests render too
FACTS = SAMPLE
TODAY = SAMPLE_TODAY


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("kind", list(StepKind))
def test_every_email_names_the_invoice_and_is_complete(kind: StepKind, language: str):
    mail = render_mail(kind, language, FACTS, TODAY)
    assert "FA-2026-0042" in mail.subject
    assert "\n" not in mail.subject
    assert "FA-2026-0042" in mail.text
    assert "Atelier Dupont" in mail.text
    assert "{{" not in mail.text
    assert "\n\n\n" not in mail.text
    assert mail.html.count("<p>") == mail.text.strip().count("\n\n") + 1


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("kind", [k for k in StepKind if k != StepKind.ISSUANCE])
def test_reminders_quote_the_balance_still_due(kind: StepKind, language: str):
    text = render_mail(kind, language, FACTS, TODAY).text
    assert ("700,50" in text) if language == "fr" else ("€700.50" in text)


def test_the_issuance_quotes_the_total_and_the_reference():
    text = render_mail(StepKind.ISSUANCE, "fr", FACTS, TODAY).text
    assert "1 200,00" in text.replace("\u202f", " ").replace("\xa0", " ")
    assert "RF18539007547034" in text


@pytest.mark.parametrize("kind", list(StepKind))
def test_french_organizations_state_the_late_payment_law_on_late_steps_only(kind: StepKind):
    for language in ("fr", "en"):
        text = render_mail(kind, language, FACTS, TODAY).text
        assert ("L441-10" in text) == (kind in LATE_STEPS)
        assert ("D441-5" in text) == (kind in LATE_STEPS)


def test_other_countries_get_no_french_law():
    facts = dataclasses.replace(FACTS, organization_country="BE")
    assert "L441-10" not in render_mail(StepKind.ESCALATION_3, "fr", facts, TODAY).text


def test_the_last_step_is_a_formal_notice_before_collection():
    fr = render_mail(StepKind.ESCALATION_3, "fr", FACTS, TODAY)
    assert "Mise en demeure" in fr.subject
    assert "mettons en demeure" in fr.text
    en = render_mail(StepKind.ESCALATION_3, "en", FACTS, TODAY)
    assert "Final notice" in en.subject
    assert "collection" in en.text


def test_days_late_count_from_the_due_date():
    assert "retard de 15 jours" in render_mail(StepKind.ESCALATION_3, "fr", FACTS, TODAY).text
    assert "15 days late" in render_mail(StepKind.ESCALATION_1, "en", FACTS, TODAY).text


def test_the_reference_line_is_left_out_when_there_is_none():
    facts = dataclasses.replace(FACTS, payment_reference=None)
    text = render_mail(StepKind.DUE, "fr", facts, TODAY).text
    assert "référence" not in text
    assert "\n\n\n" not in text


def test_names_are_escaped_in_the_html_part():
    facts = dataclasses.replace(FACTS, customer="<script>alert(1)</script>")
    html = render_mail(StepKind.DUE, "en", facts, TODAY).html
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


@pytest.mark.parametrize(
    ("customer", "organization", "expected"),
    [
        ("en", "fr", "en"),
        ("en-GB", "fr", "en"),
        (None, "en_US", "en"),
        ("de", "fr", "fr"),
        ("de", "it", "fr"),
        (None, None, "fr"),
        ("FR", "en", "fr"),
    ],
)
def test_the_customer_language_comes_first_then_the_organization_then_french(
    customer, organization, expected
):
    assert language_for(customer, organization) == expected
