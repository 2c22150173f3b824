"""Emails from templates: which template, with what wording of amounts and dates.

Pure: values in, subject and text and HTML out. One Jinja2 template per step kind and
language (``templates/<language>/<kind>.txt``) with a ``subject`` and a ``body`` block; the
HTML part is the body's paragraphs, escaped. The language is the customer's, else the
organization's, else French; the French legal mentions on late payment appear on late
steps when the organization is French.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import escape

from relance.common.events.types import StepKind

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
LATE_STEPS = frozenset(
    {StepKind.OVERDUE, StepKind.ESCALATION_1, StepKind.ESCALATION_2, StepKind.ESCALATION_3}
)

_templates = Environment(
    loader=PackageLoader("relance.notifier", "templates"),
    undefined=StrictUndefined,
    autoescape=False,  # noqa: S701 - plain text; the HTML part escapes each paragraph itself
    keep_trailing_newline=False,
)


@dataclass(frozen=True, slots=True)
class MailFacts:
    """What an email says about one invoice, as it stands when the email is sent."""

    organization: str
    organization_country: str
    customer: str
    number: str
    currency: str
    total: Decimal
    balance: Decimal
    due_date: date
    payment_reference: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def language_for(customer_locale: str | None, organization_locale: str | None) -> str:
    for locale in (customer_locale, organization_locale):
        language = (locale or "").replace("-", "_").split("_")[0].lower()
        if language in LANGUAGES:
            return language
    return DEFAULT_LANGUAGE


def render_mail(kind: StepKind, language: str, facts: MailFacts, today: date) -> RenderedMail:
    template = _templates.get_template(f"{language}/{kind.value}.txt")
    context = {
        "organization": facts.organization,
        "customer": facts.customer,
        "number": facts.number,
        "total": money(facts.total, facts.currency, language),
        "balance": money(facts.balance, facts.currency, language),
        "due_date": long_date(facts.due_date, language),
        "days_late": max((today - facts.due_date).days, 0),
        "payment_reference": facts.payment_reference,
        "legal_mentions": kind in LATE_STEPS and facts.organization_country == "FR",
    }
    blocks = template.blocks
    subject = " ".join("".join(blocks["subject"](template.new_context(context))).split())
    text = tidy("".join(blocks["body"](template.new_context(context))))
    return RenderedMail(subject=subject, text=text, html=as_html(text))


def tidy(text: str) -> str:
    """Paragraphs separated by exactly one blank line, whatever the template's if-blocks left."""
    paragraphs = [p.strip() for p in text.replace("\r\n", "\n").split("\n\n")]
    return "\n\n".join(p for p in paragraphs if p) + "\n"


def as_html(text: str) -> str:
    paragraphs = "".join(
        f"<p>{escape(p).replace(chr(10), '<br>')}</p>" for p in text.strip().split("\n\n")
    )
    return f'<!DOCTYPE html><html><body style="font-family: sans-serif">{paragraphs}</body></html>'


def money(amount: Decimal, currency: str, language: str) -> str:
    return str(format_currency(amount, currency, locale=_babel_locale(language)))


def long_date(day: date, language: str) -> str:
    return str(format_date(day, format="long", locale=_babel_locale(language)))


def _babel_locale(language: str) -> str:
    return {"fr": "fr_FR", "en": "en_GB"}.get(language, "fr_FR")
