"""The payment-matcher's matching rules: how often they are right, and how fast they are.

``matching``: a generator (a seeded ``random.Random``) writes labelled bank statements for
made-up organizations. Each organization has customers (companies and people, with names
that repeat as real names do, and IBANs, most of them known to the book) and open
invoices numbered in the organization's own format (``FA-2026-0012``, ``F202600012``,
``INV-000512``, ``2026/00012``, plain ``100512``; some organizations keep two series with
the same digits), in euros and for a few customers in dollars, some partly paid already,
many with an ISO 11649 reference, with amounts that repeat within and across customers
(subscriptions). The credits, each labelled with the invoices it really pays or with none:

- payments with the structured reference in its field or in the text;
- payments with the invoice number written in the remittance text in the many ways people
  write it (``FA-2026-0012``, ``fa20260012``, ``Fact. 2026/12``, ``facture n° 2026-12`` …),
  among bank noise (``VIR SEPA``, end-to-end ids, dates, amounts), some with a typo in the
  number;
- partial payments, payments less bank fees, payments with the 40 € indemnity added,
  grouped payments (2 to 4 invoices in one transfer, numbers listed or not);
- payments with nothing but the amount, from a known IBAN, or from an unknown IBAN under
  the payer's name as the bank writes it (upper case, legal form moved, title added,
  truncated, sometimes misspelt), and a few paid by a third party under its own name,
  which nothing can match;
- credits that pay no invoice and must never be matched: transfers from the organization's
  own savings account, supplier refunds and credit notes (with their own numbers, a
  quarter of them numbered as the organization numbers its invoices, so that the number
  is often one of its open invoices),
  sickness benefits and salaries, loan releases, interest, customer deposits on quotes, and
  invoice payments made in another currency than the invoice's.

Each credit goes through ``OpenBook.match``; a matched credit is settled at once (as the
service does within an import), a suggestion is not (a person decides later). Figures:
the precision of automatic matches (the invoices paid are exactly the label), the share of
payable credits matched rightly or suggested with the right invoices among the candidates,
and the noise credits matched (must be none). First over several organizations of various
sizes, then over the large one of the speed figure.

Speed (``engine``): one organization with 100,000 open invoices (20,000 customers) and
10,000 credits, generated beforehand in a child process of its own; timed, building the
``OpenBook`` and matching every credit (with ``settle``); the child's peak resident set
size (VmHWM, which includes the generated data and the interpreter) and the growth of its
RSS while the book was built and used. The whole service will be measured later through
its HTTP API; this is the engine alone.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import psutil

from benchmarks.report import figure, number, say
from relance.payment_matcher.matching import (
    Credit,
    Match,
    OpenBook,
    OpenInvoice,
    Payer,
)

DEFAULT_SEED = 20261123
DEFAULT_INVOICES = 100_000
DEFAULT_CREDITS = 10_000
DEFAULT_CUSTOMERS = 20_000
# the quality run: (open invoices, customers, credits) of each organization
QUALITY_ORGANIZATIONS = (
    (150, 40, 60),
    (400, 120, 150),
    (1_000, 300, 300),
    (2_500, 600, 500),
    (5_000, 1_500, 800),
    (12_000, 3_000, 1_200),
    (30_000, 6_000, 2_000),
)
TARGET_PRECISION = 0.995
TARGET_FOUND = 0.95
TARGET_SECONDS = 10.0
TARGET_RSS_MB = 500.0
MB = 1024 * 1024
TODAY = date(2026, 11, 23)
CENT = Decimal("0.01")

# -- names ---------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_SYLLABLES = _words(
    "ber mar dur lef mor gar bon rou lau fon dub vin cha pel mic ger ren gau leb tis "
    "col bri cou fau mer sav roc val bel mon lan per cas dan jol ria nel tho fab gil"
)
_ENDINGS = _words("in et ard ier eau on and ot ard ais y el aud ac ieux ou")
_FIRST_NAMES = _words(
    "Jean Marie Pierre Sophie Luc Claire Paul Julie Marc Anne Louis Emma Hugo Lea Nicolas "
    "Camille Thomas Sarah Julien Chloe Antoine Laura Olivier Manon Eric Ines Franck Lucie"
)
_TRADES = _words(
    "Boulangerie Garage Cabinet Atelier Menuiserie Plomberie Pharmacie Restaurant Hotel "
    "Transports Imprimerie Fromagerie Librairie Electricite Charpente Fleuriste Coiffure "
    "Optique Architecture Conseil Nettoyage Traiteur Paysage Informatique Agence"
)
_BRANDS = _words(
    "Horizon Azur Boreal Cobalt Delta Ecrin Fusion Granit Helios Iris Jade Kaolin Lumen "
    "Mistral Nova Opale Prisme Quartz Rivage Sirius Tilia Ulysse Vega Zephyr Alto Cedre"
)
_LEGAL_FORMS = ("SARL", "SAS", "EURL", "SASU", "SA")
_THIRD_PARTIES = (
    "CABINET COMPTABLE FIDAL",
    "MAIRIE DE LYON",
    "CAISSE D EPARGNE ILE DE FRANCE",
    "TRESOR PUBLIC",
    "ALLIANZ IARD",
    "FACTOR FRANCE",
)
_SUPPLIERS = (
    "OVH SAS",
    "ORANGE BUSINESS",
    "AMAZON EU SARL",
    "TOTALENERGIES",
    "URSSAF ILE DE FRANCE",
    "DGFIP",
    "AXA FRANCE",
    "METRO CASH CARRY",
    "LEROY MERLIN",
    "SNCF VOYAGEURS",
)


def _surname(rng: random.Random) -> str:
    parts = rng.choice((1, 2, 2, 2, 3))
    return ("".join(rng.choice(_SYLLABLES) for _ in range(parts)) + rng.choice(_ENDINGS)).title()


def _customer_name(rng: random.Random, surnames: Sequence[str]) -> str:
    roll = rng.random()
    surname = rng.choice(surnames)
    if roll < 0.4:
        return f"{rng.choice(_FIRST_NAMES)} {surname}"
    if roll < 0.75:
        name = f"{rng.choice(_TRADES)} {surname}"
    elif roll < 0.9:
        name = f"{rng.choice(_BRANDS)} {_surname(rng)}"
    else:
        name = f"{surname} et Fils"
    if rng.random() < 0.5:
        form = rng.choice(_LEGAL_FORMS)
        name = f"{form} {name}" if rng.random() < 0.3 else f"{name} {form}"
    return name


def _ascii_upper(text: str) -> str:
    table = str.maketrans("éèêëàâäîïôöùûüçÉÈ", "eeeeaaaiioouuucEE")
    return text.translate(table).upper()


def _typo(rng: random.Random, text: str) -> str:
    """One slip of the keyboard: a letter swapped with the next, dropped, or replaced."""
    positions = [i for i, c in enumerate(text[:-1]) if c.isalpha() and text[i + 1].isalpha()]
    if not positions:
        return text
    i = rng.choice(positions)
    kind = rng.random()
    if kind < 0.4:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind < 0.7:
        return text[:i] + text[i + 1 :]
    return text[:i] + rng.choice("AEIRSTNL") + text[i + 1 :]


def bank_name(rng: random.Random, name: str, person: bool) -> str:
    """The name as a bank writes it in a statement."""
    written = _ascii_upper(name)
    words = written.split()
    if person and rng.random() < 0.5:
        words = [*words[1:], words[0]]  # DUPONT JEAN
        if rng.random() < 0.4:
            words = [rng.choice(["M", "MME", "M OU MME", "MR"]), *words]
    elif not person and rng.random() < 0.4:
        forms = [w for w in words if w in _LEGAL_FORMS]
        rest = [w for w in words if w not in _LEGAL_FORMS]
        words = rest if rng.random() < 0.5 else [*forms, *rest]
    written = " ".join(words)
    if rng.random() < 0.25:
        written = _typo(rng, written)
    if len(written) > 35 or rng.random() < 0.05:
        written = written[: rng.randint(max(12, len(written) - 6), 35)]
    return written


# -- IBANs and references ------------------------------------------------------------------


def _mod97(text: str) -> int:
    return int("".join(str(int(c, 36)) for c in text)) % 97


def iban(rng: random.Random, country: str = "FR") -> str:
    """A checksum-valid IBAN of made-up digits (27 characters for France)."""
    length = {"FR": 23, "DE": 18, "BE": 12, "ES": 20, "IT": 23}[country]
    bban = "".join(rng.choice("0123456789") for _ in range(length))
    check = 98 - _mod97(bban + country + "00")
    return f"{country}{check:02d}{bban}"


def creditor_reference(body: str) -> str:
    """The ISO 11649 reference of ``body``, as a business prints it (groups of four)."""
    check = 98 - _mod97(body + "RF00")
    compact = f"RF{check:02d}{body}"
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


# -- invoice numbers -----------------------------------------------------------------------

NUMBER_FORMATS = (
    "FA-{year}-{seq:0{w}d}",
    "F{year}{seq:0{w}d}",
    "INV-{seq:0{w}d}",
    "{year}/{seq:0{w}d}",
    "FAC/{year}/{seq:0{w}d}",
    "{plain}",
    "F-{yy}{month:02d}-{seq:0{w}d}",
)


@dataclass(frozen=True, slots=True)
class Numbering:
    pattern: str
    width: int
    second_series: str | None  # another prefix with the same digits (e.g. service invoices)

    def number(self, sequence: int, year: int, month: int, series: int = 0) -> str:
        text = self.pattern.format(
            year=year,
            yy=year % 100,
            month=month,
            seq=sequence,
            w=self.width,
            plain=100000 + sequence,
        )
        if series and self.second_series:
            letters = re.match(r"[A-Za-z]*", text)
            prefix = letters.group() if letters else ""
            return self.second_series + (text[len(prefix) :] if prefix else "-" + text)
        return text


def spell_number(rng: random.Random, number: str) -> str:
    """An invoice number as a payer may type it."""
    digits = "".join(c if c.isdigit() else " " for c in number).split()
    letters = "".join(c for c in number.split(digits[0])[0] if c.isalpha())
    stripped = [g.lstrip("0") or "0" for g in digits]
    options = [number, number, number.lower(), f"{letters}{''.join(digits)}".lower() or number]
    if len(digits) > 1:
        options += [
            "/".join(stripped),
            "-".join(digits),
            f"{letters}{'-'.join(stripped)}" if letters else "-".join(stripped),
        ]
    spelled = rng.choice(options)
    word = rng.choice(["", "", "Facture ", "Fact. ", "FACT ", "facture n° ", "Invoice ", "Fac "])
    return word + spelled


def mistype_number(rng: random.Random, number: str) -> str:
    """The number with two neighbouring digits swapped (a wrong number)."""
    positions = [
        i
        for i in range(len(number) - 1)
        if number[i].isdigit() and number[i + 1].isdigit() and number[i] != number[i + 1]
    ]
    if not positions:
        return number + "1"
    i = rng.choice(positions)
    return number[:i] + number[i + 1] + number[i] + number[i + 2 :]


# -- statements ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: UUID
    name: str
    person: bool
    ibans: tuple[str, ...]  # the accounts it pays from
    known: tuple[str, ...]  # those the book knows
    currency: str


@dataclass(frozen=True, slots=True)
class Labelled:
    credit: Credit
    pays: frozenset[UUID]  # the invoices it really pays; empty: it pays none
    kind: str


@dataclass(slots=True)
class Statement:
    invoices: list[OpenInvoice]
    payers: list[Payer]
    credits: list[Labelled]


PAYMENT_KINDS = (
    ("reference", 12),
    ("reference in text", 5),
    ("number", 22),
    ("number, fees deducted", 4),
    ("number, partial", 3),
    ("number, indemnity added", 2),
    ("grouped, numbers", 5),
    ("grouped, amount only", 3),
    ("amount, known IBAN", 13),
    ("amount, name", 7),
    ("wrong number, known IBAN", 2),
    ("third party", 2),
)
NOISE_KINDS = (
    ("noise: internal transfer", 4),
    ("noise: supplier refund", 3),
    ("noise: supplier refund, a number like ours", 1),
    ("noise: benefits or salary", 3),
    ("noise: loan or interest", 1),
    ("noise: customer deposit", 2),
    ("noise: other currency", 1),
)


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128), version=4)


def _amount(rng: random.Random, subscriptions: Sequence[Decimal]) -> Decimal:
    if rng.random() < 0.3:
        return rng.choice(subscriptions)
    value = Decimal(str(round(rng.lognormvariate(6.0, 1.0), 2)))
    if rng.random() < 0.2:
        value = value.quantize(Decimal(10) if value > 100 else Decimal(1))
    return max(value, Decimal("5.00")).quantize(CENT)


def generate(
    rng: random.Random, invoice_count: int, customer_count: int, credit_count: int
) -> Statement:
    """One organization's open invoices, known payers and labelled credits."""
    numbering = Numbering(
        rng.choice(NUMBER_FORMATS),
        max(4, len(str(invoice_count)) + rng.choice((0, 1))),
        "FS" if rng.random() < 0.25 else None,
    )
    surnames = [_surname(rng) for _ in range(max(50, customer_count))]
    subscriptions = [Decimal(v) for v in ("29.00", "49.00", "99.00", "120.00", "250.00")]
    customers: list[Customer] = []
    for _ in range(customer_count):
        person = rng.random() < 0.4
        name = (
            f"{rng.choice(_FIRST_NAMES)} {rng.choice(surnames)}"
            if person
            else _customer_name(rng, surnames)
        )
        accounts = tuple(
            iban(rng, rng.choice(("FR", "FR", "FR", "DE", "BE")))
            for _ in range(rng.choice((1, 1, 1, 2)))
        )
        known = tuple(a for a in accounts if rng.random() < 0.85)
        currency = "USD" if rng.random() < 0.04 else "EUR"
        customers.append(Customer(_uuid(rng), name, person, accounts, known, currency))
    payers = [Payer(c.customer_id, (c.name,), c.known) for c in customers]

    # invoices: a few customers have many, most a handful (a long tail)
    weights = [1.0 / (rank + 1) ** 0.6 for rank in range(customer_count)]
    owners = rng.choices(customers, weights=weights, k=invoice_count)
    invoices: list[OpenInvoice] = []
    by_customer: dict[UUID, list[OpenInvoice]] = {}
    references = rng.random() < 0.85  # most organizations print references
    sequences = [0, 0]  # each series counts on its own: their digits meet
    for owner in owners:
        sent_on = TODAY - timedelta(days=rng.randint(1, 400))
        series = 1 if numbering.second_series and rng.random() < 0.3 else 0
        sequences[series] += 1
        sequence = sequences[series]
        number_ = numbering.number(sequence, sent_on.year, sent_on.month, series)
        total = _amount(rng, subscriptions)
        balance = total
        if rng.random() < 0.05:
            balance = (total * Decimal(rng.choice(("0.3", "0.5", "0.7")))).quantize(CENT)
        digits = "".join(c for c in number_ if c.isdigit())
        reference = (
            creditor_reference(f"{digits}{sequence % 97:02d}")
            if references and rng.random() < 0.7
            else None
        )
        invoice = OpenInvoice(
            _uuid(rng),
            owner.customer_id,
            number_,
            reference,
            owner.currency,
            balance,
            sent_on + timedelta(days=30),
            sent_on,
        )
        invoices.append(invoice)
        by_customer.setdefault(owner.customer_id, []).append(invoice)

    customer_of = {c.customer_id: c for c in customers}
    unpaid = list(invoices)
    rng.shuffle(unpaid)
    used: set[UUID] = set()
    organization_iban = iban(rng)
    credits: list[Labelled] = []
    kinds = [k for k, _ in PAYMENT_KINDS + NOISE_KINDS]
    kind_weights = [w for _, w in PAYMENT_KINDS + NOISE_KINDS]

    def take() -> OpenInvoice | None:
        while unpaid:
            invoice = unpaid.pop()
            if invoice.invoice_id not in used:
                used.add(invoice.invoice_id)
                return invoice
        return None

    def payer_fields(customer: Customer, known_iban: bool | None = None) -> dict[str, str]:
        accounts = customer.known if known_iban else customer.ibans
        if known_iban is False or not accounts:
            accounts = (iban(rng),)
        return {
            "counterparty_name": bank_name(rng, customer.name, customer.person),
            "counterparty_iban": rng.choice(accounts),
        }

    def noise_text() -> str:
        return rng.choice(
            [
                "VIR SEPA RECU",
                f"/E2E {TODAY:%Y%m%d}-{rng.randint(0, 999999):06d}",
                f"du {TODAY - timedelta(days=rng.randint(0, 9)):%d/%m/%Y}",
                "merci",
                f"REF {rng.randint(10**9, 10**10)}",
                "",
            ]
        )

    while len(credits) < credit_count:
        kind = rng.choices(kinds, weights=kind_weights)[0]
        if kind.startswith("noise"):
            credits.append(_noise(rng, kind, organization_iban, invoices, customers))
            continue
        taken = take()
        if taken is None:
            break
        invoice = taken
        customer = customer_of[invoice.customer_id]
        paid = [invoice]
        amount = invoice.balance
        text = ""
        fields: dict[str, str] = {}
        if kind == "reference":
            if invoice.payment_reference is None:
                kind = "number"
            else:
                printed = invoice.payment_reference
                fields["creditor_reference"] = (
                    printed if rng.random() < 0.5 else printed.replace(" ", "")
                )
                text = rng.choice(["", "FACTURE", noise_text()])
        if kind == "reference in text":
            if invoice.payment_reference is None:
                kind = "number"
            else:
                printed = invoice.payment_reference
                spelled = printed if rng.random() < 0.6 else printed.replace(" ", "")
                text = f"{noise_text()} {spelled} {noise_text()}"
        if kind.startswith("number"):
            text = f"{noise_text()} {spell_number(rng, invoice.number)} {noise_text()}"
            if kind == "number, fees deducted":
                amount -= Decimal(rng.choice(("1.50", "2.50", "4.00", "7.50", "12.00", "15.00")))
            elif kind == "number, partial":
                amount = (amount * Decimal(rng.choice(("0.3", "0.5", "0.6")))).quantize(Decimal(1))
            elif kind == "number, indemnity added":
                amount += Decimal("40.00") if amount > 800 else Decimal("0.50")
            if amount <= 0:
                amount = invoice.balance
        if kind.startswith("grouped"):
            others = [
                i
                for i in by_customer[customer.customer_id]
                if i.invoice_id not in used and i.currency == invoice.currency
            ]
            extra = rng.sample(others, k=min(len(others), rng.randint(1, 3)))
            used.update(i.invoice_id for i in extra)
            paid += extra
            amount = sum((i.balance for i in paid), Decimal(0))
            if kind == "grouped, numbers":
                listed = [spell_number(rng, i.number).split()[-1] for i in paid]
                text = rng.choice(["Factures ", "FACT ", "Reglement ", ""]) + rng.choice(
                    [" ", ", ", " + ", " / "]
                ).join(listed)
                if rng.random() < 0.2:
                    amount -= Decimal("2.50")
            else:
                text = rng.choice(["REGLEMENT RELEVE", "VIR SEPA", "PAIEMENT FACTURES", ""])
        if kind == "amount, known IBAN" and not customer.known:
            kind = "amount, name"  # the book knows none of this customer's accounts
        if kind == "amount, known IBAN":
            text = rng.choice(["VIR SEPA", "PAIEMENT", "FACTURE", "REGLEMENT", noise_text()])
            fields = payer_fields(customer, known_iban=True)
        elif kind == "amount, name":
            text = rng.choice(["VIR SEPA", "PAIEMENT", "FACTURE", ""])
            fields = payer_fields(customer, known_iban=False)
        elif kind == "wrong number, known IBAN":
            text = f"Facture {mistype_number(rng, invoice.number)}"
            fields = payer_fields(customer, known_iban=True)
        elif kind == "third party":
            text = rng.choice(["VIR SEPA", "REGLEMENT", ""])
            fields = {
                "counterparty_name": rng.choice(_THIRD_PARTIES),
                "counterparty_iban": iban(rng),
            }
        if not fields:
            fields = payer_fields(customer)
        if kind == "grouped, amount only" and not customer.known:
            kind = "grouped, amount only (unknown IBAN)"
        credit = Credit(
            amount=amount,
            currency=invoice.currency,
            remittance_info=" ".join(text.split()) or None,
            **fields,
        )
        credits.append(Labelled(credit, frozenset(i.invoice_id for i in paid), kind))
    return Statement(invoices, payers, credits)


def _noise(
    rng: random.Random,
    kind: str,
    organization_iban: str,
    invoices: Sequence[OpenInvoice],
    customers: Sequence[Customer],
) -> Labelled:
    """A credit that pays no invoice."""
    amount = Decimal(str(round(rng.lognormvariate(6.5, 1.2), 2))).quantize(CENT)
    currency = "EUR"
    name: str | None
    account: str | None = iban(rng)
    if kind == "noise: internal transfer":
        amount = Decimal(rng.choice((500, 1000, 2000, 5000, 10000)))
        name, account = "COMPTE EPARGNE", organization_iban
        text = rng.choice(["VIREMENT INTERNE", "ALIMENTATION COMPTE COURANT", "VIR CPTE A CPTE"])
    elif kind == "noise: supplier refund":
        name = rng.choice(_SUPPLIERS)
        text = rng.choice(
            [
                f"REMBOURSEMENT COMMANDE {rng.randint(100, 999)}-{rng.randint(1000000, 9999999)}",
                f"AVOIR AV-{TODAY.year}-{rng.randint(1, 9999):04d}",
                f"REMB TROP PERCU {rng.randint(10**11, 10**12)}",
                f"REFUND ORDER #{rng.randint(10**6, 10**7)}",
            ]
        )
    elif kind == "noise: supplier refund, a number like ours":
        # a supplier numbering its invoices as the organization does: the digits of one of
        # the organization's open invoices, half the time
        name = rng.choice(_SUPPLIERS)
        quoted = rng.choice(invoices).number
        if rng.random() < 0.5:
            quoted = mistype_number(rng, quoted)
        text = f"REMBOURSEMENT FACTURE {quoted}"
    elif kind == "noise: benefits or salary":
        name = rng.choice(["CPAM PARIS", "CAF DE LYON", "POLE EMPLOI", "SARL DURAND SERVICES"])
        text = rng.choice(
            [
                f"IJSS {TODAY:%m%Y}",
                f"SALAIRE {TODAY:%m/%Y}",
                "PRESTATIONS",
                f"NOVEMBRE {TODAY.year}",
            ]
        )
    elif kind == "noise: loan or interest":
        name = "BANQUE POPULAIRE"
        text = rng.choice(
            [f"DEBLOCAGE PRET {rng.randint(10**8, 10**9)}", f"INTERETS {TODAY.year} T3"]
        )
    elif kind == "noise: customer deposit":
        customer = rng.choice(customers)
        name = bank_name(rng, customer.name, customer.person)
        account = rng.choice(customer.known or customer.ibans)
        currency = customer.currency
        amount = (amount * Decimal("0.3")).quantize(Decimal(1)) + Decimal("0.01") * rng.randint(
            1, 99
        )
        text = rng.choice(
            [
                f"ACOMPTE DEVIS D-{TODAY.year}-{rng.randint(1, 999):03d}",
                "ACOMPTE COMMANDE",
                "ARRHES",
            ]
        )
    else:  # an invoice paid in a currency other than the invoice's: never matched
        invoice = rng.choice(invoices)
        currency = "GBP" if invoice.currency == "EUR" else "EUR"
        name, account = "WISE PAYMENTS LTD", iban(rng, "BE")
        amount = invoice.balance
        text = f"Invoice {invoice.number}"
    return Labelled(Credit(amount, currency, name, account, text or None), frozenset(), kind)


# -- judging the answers -------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """What the engine answered, by kind of credit."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, labelled: Labelled, match: Match) -> None:
        self.outcomes[(labelled.kind, judge(labelled, match))] += 1

    def merge(self, other: Tally) -> None:
        self.outcomes.update(other.outcomes)

    def count(self, outcome: str | None = None, *, noise: bool | None = None) -> int:
        return sum(
            n
            for (kind, seen), n in self.outcomes.items()
            if (outcome is None or seen == outcome)
            and (noise is None or kind.startswith("noise") == noise)
        )

    @property
    def precision(self) -> float:
        matched = self.count("matched right") + self.count("matched wrong")
        return self.count("matched right") / matched if matched else 1.0

    @property
    def found(self) -> float:
        payable = self.count(noise=False)
        right = self.count("matched right", noise=False) + self.count(
            "suggested right", noise=False
        )
        return right / payable if payable else 1.0

    @property
    def automatic(self) -> float:
        payable = self.count(noise=False)
        return self.count("matched right", noise=False) / payable if payable else 0.0

    def kinds(self) -> list[str]:
        return sorted({kind for kind, _ in self.outcomes})

    def line(self, kind: str) -> str:
        seen = {o: n for (k, o), n in self.outcomes.items() if k == kind}
        total = sum(seen.values())
        parts = ", ".join(f"{o} {n}" for o, n in sorted(seen.items()))
        return f"{kind}: {total} ({parts})"


def judge(labelled: Labelled, match: Match) -> str:
    """``matched right``, ``matched wrong``, ``suggested right`` (the right invoices are
    one of the candidates), ``suggested wrong``, ``unmatched``; for noise, ``ignored``
    (unmatched or suggested) or ``matched wrong``."""
    if match.state == "matched":
        return (
            "matched right" if match.candidates[0].invoice_ids == labelled.pays else "matched wrong"
        )
    if not labelled.pays:
        return "ignored"
    if match.state == "suggested":
        right = any(c.invoice_ids == labelled.pays for c in match.candidates)
        return "suggested right" if right else "suggested wrong"
    return "unmatched"


@dataclass(slots=True)
class Timing:
    build_seconds: float
    match_seconds: float
    credits: int
    invoices: int
    cpu_seconds: float  # of the process, building and matching


def evaluate(statement: Statement) -> tuple[Tally, Timing]:
    """Build the book, match every credit in turn (settling what is matched) and judge."""
    tally = Tally()
    cpu = time.process_time()
    started = time.perf_counter()
    book = OpenBook(statement.invoices, statement.payers)
    built = time.perf_counter()
    answers: list[Match] = []
    for labelled in statement.credits:
        match = book.match(labelled.credit)
        if match.state == "matched":
            book.settle(match.candidates[0].allocations)
        answers.append(match)
    done = time.perf_counter()
    cpu = time.process_time() - cpu
    for labelled, match in zip(statement.credits, answers, strict=True):
        tally.add(labelled, match)
    timing = Timing(
        built - started, done - built, len(statement.credits), len(statement.invoices), cpu
    )
    return tally, timing


# -- the run -------------------------------------------------------------------------------


def _print_quality(name: str, tally: Tally, detail: str) -> None:
    matched = tally.count("matched right") + tally.count("matched wrong")
    print(
        figure(
            f"{name}: precision of automatic matches",
            f"{tally.precision * 100:.2f} %",
            f">= {TARGET_PRECISION * 100:.1f} %",
            tally.precision >= TARGET_PRECISION,
            f"{number(tally.count('matched right'))} right of {number(matched)} matched; {detail}",
        ),
        flush=True,
    )
    payable = tally.count(noise=False)
    print(
        figure(
            f"{name}: payable credits matched or rightly suggested",
            f"{tally.found * 100:.1f} %",
            f">= {TARGET_FOUND * 100:.0f} %",
            tally.found >= TARGET_FOUND,
            f"of {number(payable)}; matched automatically {tally.automatic * 100:.1f} %",
        ),
        flush=True,
    )
    wrong_noise = tally.count("matched wrong", noise=True)
    print(
        figure(
            f"{name}: noise credits matched",
            f"{wrong_noise}",
            "0",
            wrong_noise == 0,
            f"of {number(tally.count(noise=True))}",
        ),
        flush=True,
    )


def run(
    credits: int = DEFAULT_CREDITS,
    invoices: int = DEFAULT_INVOICES,
    seed: int = DEFAULT_SEED,
    *,
    verbose: bool = True,
) -> bool:
    """Run ``matching`` and print its figures. Always True: nothing here can be lost or
    duplicated, so every shortfall is a figure, never a failure."""
    print(
        f"== payment matching: quality over {len(QUALITY_ORGANIZATIONS)} organizations, then "
        f"the engine on {number(invoices)} open invoices and {number(credits)} credits "
        f"(seed {seed}, load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}) ==",
        flush=True,
    )
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    quality = Tally()
    sizes = []
    for open_invoices, customers, count in QUALITY_ORGANIZATIONS:
        organization = random.Random(rng.getrandbits(64))  # noqa: S311 - test data
        statement = generate(organization, open_invoices, customers, count)
        tally, _ = evaluate(statement)
        quality.merge(tally)
        sizes.append(number(open_invoices))
    _print_quality(
        "matching quality, organizations of " + ", ".join(sizes) + " invoices",
        quality,
        f"{number(quality.count())} credits, {number(quality.count(noise=True))} of them noise",
    )
    if verbose:
        for kind in quality.kinds():
            say(quality.line(kind))

    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.payment_matching",
            str(invoices),
            str(credits),
            str(seed),
        ],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode != 0:
        print(f"payment matching engine: could not measure: {child.stderr[-2000:]}", flush=True)
        return True
    result = json.loads(child.stdout.strip().splitlines()[-1])
    seconds = result["build_seconds"] + result["match_seconds"]
    print(
        figure(
            "payment matching engine: build the book and match every credit",
            f"{seconds:.2f} s",
            f"<= {TARGET_SECONDS:.0f} s",
            seconds <= TARGET_SECONDS,
            f"book of {number(invoices)} invoices and {number(result['payers'])} payers built in "
            f"{result['build_seconds']:.2f} s; {number(credits)} credits matched and settled in "
            f"{result['match_seconds']:.2f} s, {result['match_seconds'] / credits * 1e6:.0f} µs "
            f"each; CPU time of the process {result['cpu_seconds']:.2f} s, load average "
            f"{result['load_average']:.2f}; data generated beforehand in "
            f"{result['generate_seconds']:.1f} s",
        ),
        flush=True,
    )
    peak = result["peak_rss_mb"]
    print(
        figure(
            "payment matching engine: peak RSS",
            f"{peak:.0f} MB",
            f"< {TARGET_RSS_MB:.0f} MB",
            peak < TARGET_RSS_MB,
            f"the whole child process (interpreter and generated data included); "
            f"{result['rss_before_mb']:.0f} MB before the book, "
            f"{result['rss_after_mb']:.0f} MB after matching",
        ),
        flush=True,
    )
    large = Tally(Counter({(k, o): n for k, o, n in result["outcomes"]}))
    _print_quality(
        f"matching quality, the {number(invoices)}-invoice organization",
        large,
        f"{number(large.count())} credits, {number(large.count(noise=True))} of them noise",
    )
    if verbose:
        for kind in large.kinds():
            say(large.line(kind))
    return True


def engine(invoices: int, credits: int, seed: int) -> dict[str, object]:
    """The speed figure, in a process of its own (so that its peak RSS is its own)."""
    started = time.perf_counter()
    statement = generate(
        random.Random(seed + 1),  # noqa: S311 - test data, not secrets
        invoices,
        DEFAULT_CUSTOMERS * invoices // DEFAULT_INVOICES or 1,
        credits,
    )
    generated = time.perf_counter()
    process = psutil.Process()
    before = process.memory_info().rss / MB
    tally, timing = evaluate(statement)
    after = process.memory_info().rss / MB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return {
        "generate_seconds": generated - started,
        "build_seconds": timing.build_seconds,
        "match_seconds": timing.match_seconds,
        "payers": len(statement.payers),
        "cpu_seconds": timing.cpu_seconds,
        "load_average": os.getloadavg()[0],
        "rss_before_mb": before,
        "rss_after_mb": after,
        "peak_rss_mb": peak,
        "outcomes": [[k, o, n] for (k, o), n in tally.outcomes.items()],
    }


def _main(argv: Iterable[str]) -> int:
    invoices, credits, seed = (int(a) for a in argv)
    print(json.dumps(engine(invoices, credits, seed)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
