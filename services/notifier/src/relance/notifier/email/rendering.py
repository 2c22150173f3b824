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
from types import TracebackType

from babel.dates import format_date
from babel.numbers import format_currency
from jinja2 import Environment, PackageLoader, StrictUndefined, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import escape

from relance.common.events.types import StepKind

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
LATE_STEPS = frozenset(
    {StepKind.OVERDUE, StepKind.ESCALATION_1, StepKind.ESCALATION_2, StepKind.ESCALATION_3}
)

_templates = Environment(
    loader=PackageLoader("relance.notifier.email", "templates"),
    undefined=StrictUndefined,
    autoescape=False,  # noqa: S701 - plain text; the HTML part escapes each paragraph itself
    keep_trailing_newline=False,
)


# an organization's own templates run sandboxed: they may only read the values given
_overrides = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True, slots=True)
class Override:
    """An organization's wording of one step kind in one language."""

    subject: str
    body: str


class BadTemplate(ValueError):
    def __init__(self, part: str, line: int | None, message: str) -> None:
        where = f"{part}, line {line}" if line else part
        super().__init__(f"{where}: {message}")
        self.part, self.line = part, line


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


def render_mail(
    kind: StepKind,
    language: str,
    facts: MailFacts,
    today: date,
    override: Override | None = None,
) -> RenderedMail:
    """The email of a step; ``override`` replaces the built-in wording (raises
    :class:`BadTemplate` if it cannot render these facts)."""
    context = mail_context(kind, language, facts, today)
    if override is not None:
        subject = _render_part("subject", override.subject, context)
        body = _render_part("body", override.body, context)
    else:
        template = _templates.get_template(f"{language}/{kind.value}.txt")
        subject = "".join(template.blocks["subject"](template.new_context(context)))
        body = "".join(template.blocks["body"](template.new_context(context)))
    text = tidy(body)
    return RenderedMail(subject=" ".join(subject.split()), text=text, html=as_html(text))


def mail_context(kind: StepKind, language: str, facts: MailFacts, today: date) -> dict[str, object]:
    """The values a template may use."""
    return {
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


def subject_number_problem(source: str) -> str | None:
    """Why an organization's subject does not always show the invoice number, or None.

    Every email's subject carries the invoice number, so that the customer (and their
    accountant's mail search) finds it. The subject must therefore output the variable
    ``number`` as it is, whatever the data: ``{{ number }}`` (any whitespace inside the
    braces, ``{{- number -}}`` too) outside any ``{% if %}``, ``{% for %}`` or other block,
    with no ``{% set number %}`` or loop variable of that name anywhere. A filter or an
    expression on it (``{{ number | upper }}``, ``{{ number[:4] }}``) does not count: it
    may change or drop the number, and which ones keep it cannot be told in general.
    Syntax errors are left to rendering, which names their line."""
    try:
        tree = _overrides.parse(source)
    except TemplateError:
        return None
    if any(
        name.name == "number" and name.ctx in ("store", "param")
        for name in tree.find_all(nodes.Name)
    ):
        return "the subject must not assign the variable number: it is the invoice number"
    shown = any(
        isinstance(expression, nodes.Name) and expression.name == "number"
        for statement in tree.body
        if isinstance(statement, nodes.Output)
        for expression in statement.nodes
    )
    if not shown:
        return (
            "the subject must show the invoice number: write {{ number }} in it, without a "
            "filter and outside any {% if %} or {% for %}"
        )
    return None


def _render_part(part: str, source: str, context: dict[str, object]) -> str:
    try:
        return _overrides.from_string(source).render(context)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None) or _template_line(exc.__traceback__)
        raise BadTemplate(part, line, exc.message or type(exc).__name__) from exc


def _template_line(trace: TracebackType | None) -> int | None:
    """The template line an error at render time came from (Jinja2 puts template frames,
    with their own line numbers, in the traceback)."""
    line = None
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == "<template>":
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def builtin_source(kind: StepKind, language: str) -> Override:
    """The built-in wording, as an organization would start overriding it."""
    assert _templates.loader is not None
    source, _, _ = _templates.loader.get_source(_templates, f"{language}/{kind.value}.txt")
    subject = source.split("{% block subject %}", 1)[1].split("{% endblock %}", 1)[0]
    body = source.split("{% block body %}", 1)[1].split("{% endblock %}", 1)[0]
    return Override(subject=subject, body=body)


SAMPLE = MailFacts(
    organization="Atelier Dupont",
    organization_country="FR",
    customer="Boulangerie Martin",
    number="FA-2026-0042",
    currency="EUR",
    total=Decimal("1200.00"),
    balance=Decimal("700.50"),
    due_date=date(2026, 3, 31),
    payment_reference="RF18539007547034",
)
SAMPLE_TODAY = date(2026, 4, 15)


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
