"""The notifier: emails per second, the time from sending an invoice to its email, and
partner webhooks next to a partner that never answers.

``emails``: on an embedded PostgreSQL started in a temporary folder (its default settings,
fsync on, as ``make dev`` runs it), a database migrated by the notifier's alembic revisions
is filled as its consumer fills it: ``invoice.sent`` events (20 organizations, French and
English customers, amounts and due dates that vary) and then one ``reminder.due`` per
invoice (the seven step kinds in turn), each applied by the notifier's own handlers after
``claim_event``, 250 events per transaction. Then the real service (``python -m
relance.notifier serve`` in a child process, its default settings, consumers off, a broker
address nobody answers on so that its ``email.sent`` events stay in the outbox where they
are counted) sends them through its ``EmailSending`` loop to the development stack's SMTP
catcher (aiosmtpd) in another child process. The ``reminder.due`` events carry a time
``T0`` a few seconds ahead, so the deliveries become due together once the service is
running; timed from ``T0`` to the last delivery's ``done_at``. Then every delivery must be
``sent``, the outbox must hold one ``email.sent`` per step and the catcher exactly one
mail per step, by Message-ID (else the run fails). The baseline, before it in the same
run: a bare ``aiosmtplib.SMTP`` on one connection sending the same messages (rendered
beforehand with the notifier's ``render_mail`` and ``build_message``), one after the other,
to a new catcher. CPU time of the service, the catcher and PostgreSQL per email;
``--profile`` records the service with py-spy.

``send-latency``: ``relance-dev`` (what ``make dev`` runs) on free ports and a temporary
data folder; an organization, a customer and draft invoices over HTTP; a few warm-up sends;
then ``POST /v1/invoices/{id}/send`` for each invoice at a steady rate. Each latency is from
the moment the POST is made to the moment the catcher received the issuance email's data
(the time in the name of the ``.eml`` file it writes). Every invoice must get exactly one
issuance email.

``webhooks``: the notifier (as above, only its webhook loop running, its default
``WEBHOOK_CONCURRENCY`` and ``WEBHOOK_TIMEOUT_SECONDS``) and ten partner HTTP servers in a
child process, one of which reads each request and never answers. One organization, its
endpoints subscribed to ``invoice.sent`` (added with the notifier's repository functions).
First the nine answering endpoints alone, then the tenth added: each phase applies
``invoice.sent`` events through the notifier's handlers at a steady rate, one transaction
each. A delivery's latency is from its event's time to its arrival at the partner.
Every delivery to the nine must arrive.

Figures are printed, never asserted: the machines are shared and noisy.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import pstats
import random
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import Message
from pathlib import Path
from typing import Any

import aiosmtplib
import asyncpg
import httpx

from benchmarks import dev_stack
from benchmarks.invoice_api import PostgresCpu, load_average, percentile, postmaster_pid
from benchmarks.report import figure, number, say
from benchmarks.stack import (
    CatcherProcess,
    ServiceProcess,
    caught_headers,
    message_ids,
)
from relance.common.clock import SystemClock, local_today
from relance.common.db import Database
from relance.common.events import Event
from relance.common.events.invoice_events import InvoiceSent
from relance.common.events.reminder_events import ReminderDue
from relance.common.events.types import (
    CustomerSnapshot,
    InvoiceSnapshot,
    OrganizationSnapshot,
    StepKind,
)
from relance.common.inbox import claim_event
from relance.common.migrations import upgrade
from relance.devstack.ports import free_port, wait_for_port
from relance.devstack.postgres import EmbeddedPostgres, create_databases
from relance.devstack.supervisor import DEV_ADMIN_TOKEN
from relance.notifier.email.mail import Envelope, build_message, message_id_for
from relance.notifier.email.rendering import MailFacts, language_for, render_mail
from relance.notifier.handlers import HANDLERS
from relance.notifier.settings import NotifierSettings
from relance.notifier.webhooks import repository as webhooks_repo

TARGET_EMAILS_PER_SECOND = 400
TARGET_EMAIL_RATIO = 0.8
TARGET_SEND_P95_SECONDS = 1.0
TARGET_WEBHOOK_RATIO = 1.5  # "not slowed": p95 with the dead partner / p95 without
DEFAULT_EMAILS = 5000
DEFAULT_SEND_INVOICES = 200
DEFAULT_SEND_RATE = 5.0
DEFAULT_WEBHOOK_RATE = 2.0
DEFAULT_WEBHOOK_SECONDS = 30
ORGANIZATIONS = 20
EVENTS_PER_TRANSACTION = 250
POLL_SECONDS = 0.05
EMAILS_TIMEOUT_SECONDS = 300.0
WARMUP_SENDS = 5
MAIL_WAIT_SECONDS = 60.0  # after the last send, for the last email
SETTLE_SECONDS = 2.0  # after the last expected email, for a duplicate
RETRIED_SECONDS = 10.0  # an email this late waited for a retry (SEND_RETRY_SECONDS)
PARTNERS = 10
WEBHOOK_WAIT_SECONDS = 120.0
TIMEZONE = "Europe/Paris"
KINDS = tuple(StepKind)
ROOT = Path(__file__).resolve().parents[1]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def _spread(values: Sequence[float]) -> str:
    if not values:
        return "none"
    return (
        f"p50 {_ms(percentile(values, 0.5))}, p95 {_ms(percentile(values, 0.95))}, "
        f"p99 {_ms(percentile(values, 0.99))}, max {_ms(max(values))}"
    )


# What the notifier's consumer would have stored


@dataclass(frozen=True)
class Case:
    """One invoice and its due step."""

    organization: OrganizationSnapshot
    customer: CustomerSnapshot
    invoice: InvoiceSnapshot
    invoice_id: uuid.UUID
    step_id: uuid.UUID
    kind: StepKind


def make_cases(count: int, seed: int, today: date) -> list[Case]:
    rng = random.Random(seed)  # noqa: S311 - test data, not secrets
    organizations = [
        OrganizationSnapshot(
            id=uuid.uuid4(),
            name=f"Atelier {index:02d} SARL",
            locale="en" if index % 5 == 4 else "fr",
            sender_email=f"factures@atelier{index:02d}.example" if index % 3 else None,
        )
        for index in range(ORGANIZATIONS)
    ]
    cases = []
    for index in range(count):
        organization = organizations[index % ORGANIZATIONS]
        kind = KINDS[index % len(KINDS)]
        total = Decimal(rng.randrange(10_000, 2_000_000)) / 100
        paid = Decimal(0) if index % 4 else (total / 3).quantize(Decimal("0.01"))
        due = today - timedelta(days=rng.randrange(-10, 60))
        cases.append(
            Case(
                organization=organization,
                customer=CustomerSnapshot(
                    id=uuid.uuid4(),
                    name=f"Client {index:05d}",
                    email=f"compta{index}@client{index % 300}.example",
                    locale=(None, "fr", "en")[index % 3],
                ),
                invoice=InvoiceSnapshot(
                    number=f"FA-2026-{index:06d}",
                    currency="EUR",
                    total=total,
                    paid=paid,
                    balance=total - paid,
                    issue_date=due - timedelta(days=30),
                    due_date=due,
                    sent_at=datetime.combine(due - timedelta(days=30), datetime.min.time(), UTC),
                    payment_reference=f"RF18{index:010d}",
                ),
                invoice_id=uuid.uuid4(),
                step_id=uuid.uuid4(),
                kind=kind,
            )
        )
    return cases


def invoice_sent(case: Case, at: datetime) -> Event[InvoiceSent]:
    return Event.new(
        InvoiceSent(
            invoice_id=case.invoice_id,
            organization=case.organization,
            customer=case.customer,
            invoice=case.invoice,
        ),
        source="benchmark",
        organization_id=case.organization.id,
        time=at,
    )


def reminder_due(case: Case, at: datetime) -> Event[ReminderDue]:
    return Event.new(
        ReminderDue(
            invoice_id=case.invoice_id,
            step_id=case.step_id,
            kind=case.kind,
            severity=min(KINDS.index(case.kind), 5),
            scheduled_for=at,
        ),
        source="benchmark",
        organization_id=case.organization.id,
        time=at,
    )


async def apply_events(database: Database, events: Sequence[Event[Any]], per: int) -> None:
    """As the notifier's consumer applies them (inbox, then the handler), ``per`` events
    per transaction."""
    for start in range(0, len(events), per):
        async with database.transaction() as session:
            for event in events[start : start + per]:
                if await claim_event(session, event.id, event.type):
                    await HANDLERS[event.type](session, event)


def bare_message(case: Case, today: date) -> Message:
    """The email the notifier sends for ``case``, made with its own functions."""
    facts = MailFacts(
        organization=case.organization.name,
        organization_country=case.organization.country,
        customer=case.customer.name,
        number=case.invoice.number,
        currency=case.invoice.currency,
        total=case.invoice.total,
        balance=case.invoice.balance,
        due_date=case.invoice.due_date,
        payment_reference=case.invoice.payment_reference,
    )
    language = language_for(case.customer.locale, case.organization.locale)
    envelope = Envelope(
        sender=case.organization.sender_email or NotifierSettings().mail_from,
        recipient=case.customer.email or "",
        invoice_id=case.invoice_id,
        kind=case.kind.value,
        message_id=message_id_for(case.step_id),
        date=datetime.now(UTC),
    )
    return build_message(envelope, render_mail(case.kind, language, facts, today))


# emails: the sending loop against a bare aiosmtplib loop


@dataclass
class Catch:
    """What a catcher received, against what it should have."""

    expected: int
    distinct: int
    duplicated: int
    missing: int
    unknown: int

    @property
    def ok(self) -> bool:
        return self.distinct == self.expected and not (
            self.duplicated or self.missing or self.unknown
        )

    def line(self) -> str:
        return (
            f"{number(self.distinct)} distinct Message-IDs of {number(self.expected)} at the "
            f"catcher, {self.duplicated} twice, {self.missing} missing, {self.unknown} unknown"
        )


def check_catch(folder: Path, expected: set[str]) -> Catch:
    seen = message_ids(folder)
    return Catch(
        expected=len(expected),
        distinct=len(seen),
        duplicated=sum(1 for n in seen.values() if n > 1),
        missing=len(expected - seen.keys()),
        unknown=len(seen.keys() - expected),
    )


@dataclass
class Sending:
    """One timed sending of N emails."""

    count: int
    seconds: float
    sender_cpu: float
    catcher_cpu: float
    postgres_cpu: float
    catch: Catch
    states: Counter[str] = field(default_factory=Counter)
    outbox_sent: int = 0
    outbox_distinct: int = 0

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    def cpu_line(self, sender: str) -> str:
        per = 1e6 / self.count
        return (
            f"CPU per email: {sender} {self.sender_cpu * per:,.0f} µs (busy "
            f"{self.sender_cpu / self.seconds:.0%}), catcher {self.catcher_cpu * per:,.0f} µs "
            f"({self.catcher_cpu / self.seconds:.0%}), PostgreSQL {self.postgres_cpu * per:,.0f}"
            f" µs ({self.postgres_cpu / self.seconds:.0%})"
        )


async def run_bare(workdir: Path, messages: list[Message], pg: PostgresCpu, index: int) -> Sending:
    catcher = CatcherProcess(workdir / f"mail-bare-{index}", workdir / f"catcher-bare-{index}.log")
    try:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=catcher.port, timeout=30)
        await client.connect()
        try:
            cpu = (time.process_time(), catcher.cpu_seconds(), pg.seconds())
            started = time.perf_counter()
            for message in messages:
                await client.send_message(message)
            seconds = time.perf_counter() - started
            spent = (time.process_time(), catcher.cpu_seconds(), pg.seconds())
        finally:
            await client.quit()
    finally:
        catcher.stop()
    expected = {str(m["Message-ID"]) for m in messages}
    return Sending(
        count=len(messages),
        seconds=seconds,
        sender_cpu=spent[0] - cpu[0],
        catcher_cpu=spent[1] - cpu[1],
        postgres_cpu=spent[2] - cpu[2],
        catch=check_catch(catcher.folder, expected),
    )


DELIVERIES_OPEN = """
SELECT count(*) FILTER (WHERE state IN ('pending', 'sending')) AS open, max(done_at) AS last
FROM deliveries
"""
OUTBOX_SENT = """
SELECT count(*) AS rows,
       count(DISTINCT convert_from(value, 'UTF8')::jsonb ->> 'step_id') AS steps
FROM outbox WHERE event_type = 'email.sent'
"""


def notifier_environ(url: str, **settings: str) -> dict[str, str]:
    """The service's settings: its defaults, but this database, consumers off, and a broker
    address nobody answers on (its events stay in the outbox, where they are counted)."""
    return {
        "DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        "RUN_CONSUMERS": "false",
        **settings,
    }


async def run_service_sending(
    workdir: Path,
    url: str,
    cases: list[Case],
    pg: PostgresCpu,
    index: int,
    lead: float,
    profile: bool,
) -> Sending:
    catcher = CatcherProcess(workdir / f"mail-{index}", workdir / f"catcher-{index}.log")
    service: ServiceProcess | None = None
    database = Database(url, pool_size=2)
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    profiled = workdir / f"notifier-{index}.prof" if profile else None
    try:
        service = ServiceProcess(
            "relance.notifier",
            NotifierSettings,
            notifier_environ(url, SMTP_HOST="127.0.0.1", SMTP_PORT=str(catcher.port)),
            workdir / f"notifier-{index}.log",
            profile=profiled,
        )
        await service.wait_started()
        t0 = (datetime.now(UTC) + timedelta(seconds=lead)).replace(microsecond=0)
        loading = time.perf_counter()
        await apply_events(database, [reminder_due(c, t0) for c in cases], EVENTS_PER_TRANSACTION)
        ahead = (t0 - datetime.now(UTC)).total_seconds()
        say(
            f"round {index}: notifier ready (pid {service.process.pid}), catcher on "
            f"{catcher.port}; {number(len(cases))} reminder.due applied in "
            f"{time.perf_counter() - loading:.1f} s, due at {t0:%H:%M:%S}, {ahead:.1f} s ahead"
        )
        if ahead < 0.5:
            raise RuntimeError("the deliveries were stored too late: the lead is too short")
        await asyncio.sleep(max(0.0, ahead - 0.3))
        cpu = (service.cpu_seconds(), catcher.cpu_seconds(), pg.seconds())
        deadline = time.monotonic() + EMAILS_TIMEOUT_SECONDS
        while True:
            row = await connection.fetchrow(DELIVERIES_OPEN)
            if row["open"] == 0 and row["last"] is not None:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"emails not all sent after {EMAILS_TIMEOUT_SECONDS:.0f} s")
            await asyncio.sleep(POLL_SECONDS)
        spent = (service.cpu_seconds(), catcher.cpu_seconds(), pg.seconds())
        seconds = (row["last"] - t0).total_seconds()
        states = Counter(
            {
                r["state"]: r["n"]
                for r in await connection.fetch(
                    "SELECT state, count(*) AS n FROM deliveries GROUP BY state"
                )
            }
        )
        outbox = await connection.fetchrow(OUTBOX_SENT)
    finally:
        await connection.close()
        await database.dispose()
        if service is not None:
            service.stop()
        catcher.stop()
    sending = Sending(
        count=len(cases),
        seconds=seconds,
        sender_cpu=spent[0] - cpu[0],
        catcher_cpu=spent[1] - cpu[1],
        postgres_cpu=spent[2] - cpu[2],
        catch=check_catch(catcher.folder, {message_id_for(c.step_id) for c in cases}),
        states=states,
        outbox_sent=outbox["rows"],
        outbox_distinct=outbox["steps"],
    )
    if profiled is not None and profiled.exists():
        print_profile(profiled, len(cases))
    return sending


@dataclass
class EmailRound:
    bare: Sending
    service: Sending

    @property
    def ratio(self) -> float:
        return self.service.rate / self.bare.rate

    @property
    def ok(self) -> bool:
        n = self.service.count
        return (
            self.bare.catch.ok
            and self.service.catch.ok
            and self.service.states == Counter({"sent": n})
            and self.service.outbox_sent == n
            and self.service.outbox_distinct == n
        )


async def emails_round(
    postgres: EmbeddedPostgres, workdir: Path, count: int, index: int, profile: bool
) -> EmailRound:
    name = f"relance_bench_notifier_{index}"
    await create_databases(postgres.dsn(), [name])
    url = postgres.url(name)
    await asyncio.to_thread(upgrade, "relance.notifier", url)
    pg = PostgresCpu(await postmaster_pid(postgres.dsn()))
    today = local_today(SystemClock(), TIMEZONE)
    cases = make_cases(count, index, today)
    database = Database(url, pool_size=2)
    try:
        started = time.perf_counter()
        now = datetime.now(UTC)
        await apply_events(database, [invoice_sent(c, now) for c in cases], EVENTS_PER_TRANSACTION)
        loaded = time.perf_counter() - started
    finally:
        await database.dispose()
    say(
        f"round {index}: {number(count)} invoice.sent applied by the notifier's handlers in "
        f"{loaded:.1f} s ({ORGANIZATIONS} organizations, {len(KINDS)} step kinds, fr and en)"
    )
    messages = [bare_message(c, today) for c in cases]
    bare = await run_bare(workdir, messages, pg, index)
    say(
        f"  bare aiosmtplib, one connection: {number(count)} emails in {bare.seconds:.2f} s = "
        f"{number(bare.rate)} emails/s; {bare.cpu_line('this process')}; {bare.catch.line()}"
    )
    service = await run_service_sending(
        workdir, url, cases, pg, index, lead=3.0 + 1.5 * loaded, profile=profile
    )
    states = ", ".join(f"{n} {s}" for s, n in sorted(service.states.items()))
    say(
        f"  notifier: {number(count)} emails in {service.seconds:.2f} s = "
        f"{number(service.rate)} emails/s; {service.cpu_line('service')}; {service.catch.line()}"
        f"; deliveries {states}; outbox {number(service.outbox_sent)} email.sent for "
        f"{number(service.outbox_distinct)} steps; load average {load_average()}"
    )
    return EmailRound(bare, service)


def run_emails(count: int = DEFAULT_EMAILS, *, repeat: int = 1, profile: bool = False) -> bool:
    """Run ``emails`` and print its figures; False if an email was lost or sent twice."""
    print(
        f"== notifier emails: {number(count)} due steps to an SMTP catcher, against a bare "
        f"aiosmtplib loop, {os.cpu_count()} CPUs, load average {load_average()} ==",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-notifier-"))
    postgres: EmbeddedPostgres | None = None
    try:
        postgres = EmbeddedPostgres(workdir / "postgres")
        say(f"embedded PostgreSQL in {workdir / 'postgres'}; logs in {workdir}")
        rounds = [
            asyncio.run(emails_round(postgres, workdir, count, n + 1, profile and n == 0))
            for n in range(repeat)
        ]
    except RuntimeError as exc:
        print(f"notifier emails: FAILED: {exc}", flush=True)
        return False
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rates = [r.service.rate for r in rounds]
    ratios = [r.ratio for r in rounds]
    rate, ratio = statistics.median(rates), statistics.median(ratios)
    print(
        figure(
            f"notifier emails, {number(count)} due steps rendered and sent to an SMTP catcher",
            f"{number(rate)} emails/s",
            f">= {TARGET_EMAILS_PER_SECOND}",
            rate >= TARGET_EMAILS_PER_SECOND,
            f"median of {len(rounds)} round(s): " + ", ".join(number(r) for r in rates),
        ),
        flush=True,
    )
    print(
        figure(
            "notifier emails / bare aiosmtplib on one connection",
            f"{ratio:.2f}",
            f">= {TARGET_EMAIL_RATIO}",
            ratio >= TARGET_EMAIL_RATIO,
            "bare "
            + ", ".join(number(r.bare.rate) for r in rounds)
            + " emails/s; ratios "
            + ", ".join(f"{r:.2f}" for r in ratios),
        ),
        flush=True,
    )
    ok = all(r.ok for r in rounds)
    print(
        "notifier emails delivery: every step sent, one email.sent each, each Message-ID once "
        "at the catcher: " + ("OK" if ok else "FAILED"),
        flush=True,
    )
    return ok


def print_profile(path: Path, count: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    say(
        f"cProfile of the notifier's process over its whole life (start, {number(count)} "
        "emails, stop):"
    )
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(50)
    print(out.getvalue(), flush=True)


# send-latency: POST /send to the issuance email at the catcher, on the whole dev stack


@dataclass
class Sent:
    posted: float  # time.time() when the POST was made
    answered: float = 0.0
    status: int = 0
    arrivals: list[float] = field(default_factory=list)
    sent_at: float | None = None  # invoice-api's invoices.sent_at
    fired_at: float | None = None  # the scheduler's issuance step, fired_at


async def stamp_hops(data_dir: Path, sent: dict[str, Sent]) -> None:
    """Read when invoice-api marked each invoice sent and when the scheduler fired its
    issuance step, from their databases on the dev stack's PostgreSQL (its Unix socket)."""
    socket = data_dir / "postgres"

    async def rows(database: str, query: str) -> list[Any]:
        connection = await asyncpg.connect(f"postgresql://postgres:@/{database}?host={socket}")
        try:
            return list(await connection.fetch(query, [uuid.UUID(i) for i in sent]))
        finally:
            await connection.close()

    for row in await rows(
        "relance_invoice_api", "SELECT id, sent_at FROM invoices WHERE id = ANY($1::uuid[])"
    ):
        if row["sent_at"] is not None:
            sent[str(row["id"])].sent_at = row["sent_at"].timestamp()
    for row in await rows(
        "relance_scheduler",
        "SELECT invoice_id, fired_at FROM steps WHERE kind = 'issuance' "
        "AND invoice_id = ANY($1::uuid[])",
    ):
        if row["fired_at"] is not None:
            sent[str(row["invoice_id"])].fired_at = row["fired_at"].timestamp()


class MailWatch:
    """The issuance emails arriving in the dev stack's mail folder, by invoice id."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._seen: set[str] = set()
        self.arrivals: dict[str, list[float]] = {}
        self.others = 0

    def poll(self) -> None:
        new = [p for p in self.folder.glob("*.eml") if p.name not in self._seen]
        if not new:
            return
        self._seen.update(p.name for p in new)
        for arrived, headers in caught_headers(new, ["X-Reminder-Kind", "X-Invoice-Id"]):
            if headers.get("X-Reminder-Kind") != "issuance" or "X-Invoice-Id" not in headers:
                self.others += 1
                continue
            self.arrivals.setdefault(headers["X-Invoice-Id"], []).append(arrived)


async def _create_invoices(
    client: httpx.AsyncClient, auth: dict[str, str], customer: str, count: int
) -> list[str]:
    today = date.today()
    ids = []
    for index in range(count):
        answer = await client.post(
            "/v1/invoices",
            json={
                "customer_id": customer,
                "number": f"FA-LAT-{index:05d}",
                "issue_date": today.isoformat(),
                "due_date": (today + timedelta(days=30)).isoformat(),
                "currency": "EUR",
                "total": f"{1000 + index}.00",
            },
            headers=auth,
        )
        if answer.status_code != 201:
            raise RuntimeError(f"POST /v1/invoices answered {answer.status_code}: {answer.text}")
        ids.append(str(answer.json()["id"]))
    return ids


async def _send_all(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    ids: list[str],
    rate: float,
    watch: MailWatch,
) -> dict[str, Sent]:
    sent: dict[str, Sent] = {}

    async def send(invoice_id: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        record = sent[invoice_id] = Sent(posted=time.time())
        answer = await client.post(f"/v1/invoices/{invoice_id}/send", headers=auth)
        record.answered, record.status = time.time(), answer.status_code

    start = time.monotonic() + 0.2
    tasks = [asyncio.create_task(send(i, start + n / rate)) for n, i in enumerate(ids)]
    try:
        while not all(t.done() for t in tasks):
            watch.poll()
            await asyncio.sleep(POLL_SECONDS)
        for task in tasks:
            task.result()
        deadline = time.monotonic() + MAIL_WAIT_SECONDS
        while time.monotonic() < deadline and not all(i in watch.arrivals for i in ids):
            watch.poll()
            await asyncio.sleep(POLL_SECONDS)
        await asyncio.sleep(SETTLE_SECONDS)
        watch.poll()
    finally:
        for task in tasks:
            task.cancel()
    for invoice_id, record in sent.items():
        record.arrivals = watch.arrivals.get(invoice_id, [])
    return sent


async def _latency(base_url: str, mail_dir: Path, count: int, rate: float) -> dict[str, Sent]:
    token = os.environ.get("ADMIN_TOKEN", DEV_ADMIN_TOKEN)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        answer = await client.post(
            "/v1/organizations",
            json={"name": "Atelier Dupont SARL", "country": "FR", "timezone": TIMEZONE},
            headers={"X-Admin-Token": token},
        )
        if answer.status_code != 201:
            raise RuntimeError(f"POST /v1/organizations answered {answer.status_code}")
        auth = {"authorization": f"Bearer {answer.json()['api_key']}"}
        answer = await client.post(
            "/v1/customers",
            json={"name": "Boulangerie Martin", "email": "compta@martin.example"},
            headers=auth,
        )
        if answer.status_code != 201:
            raise RuntimeError(f"POST /v1/customers answered {answer.status_code}")
        customer = str(answer.json()["id"])
        ids = await _create_invoices(client, auth, customer, WARMUP_SENDS + count)
        watch = MailWatch(mail_dir)
        warm = await _send_all(client, auth, ids[:WARMUP_SENDS], 2.0, watch)
        missing = [i for i, s in warm.items() if not s.arrivals]
        if missing:
            raise RuntimeError(f"{len(missing)} warm-up emails did not arrive")
        say(
            f"warm-up: {WARMUP_SENDS} invoices sent, their issuance emails after "
            + ", ".join(_ms(s.arrivals[0] - s.posted) for s in warm.values())
        )
        sent = await _send_all(client, auth, ids[WARMUP_SENDS:], rate, watch)
    await stamp_hops(mail_dir.parent, sent)
    return sent


def run_send_latency(count: int = DEFAULT_SEND_INVOICES, rate: float = DEFAULT_SEND_RATE) -> bool:
    """Run ``send-latency`` and print its figure; False if the stack failed or an invoice
    got no issuance email, or two."""
    print(
        f"== POST /v1/invoices/{{id}}/send to the issuance email at the SMTP catcher, make dev: "
        f"{number(count)} invoices at {rate:g} a second, {os.cpu_count()} CPUs, load average "
        f"{load_average()} ==",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-send-"))
    data_dir = workdir / "data"
    current: dev_stack.DevProcess | None = None
    ok = True
    try:
        ports = dev_stack.pick_ports()
        current = dev_stack.DevProcess.launch(data_dir, ports)
        seconds, _ = current.wait_ready()
        say(f"relance-dev ready in {seconds:.1f} s; services on {ports.base}-{ports.base + 3}")
        sent = asyncio.run(
            _latency(f"http://127.0.0.1:{ports.base}", data_dir / "mail", count, rate)
        )
        stop = current.stop()
        current = None
        say(f"SIGTERM stopped the stack in {stop:.1f} s; load average {load_average()}")
        retries = not_sent_reasons(data_dir / "logs" / "notifier.log")
        say(
            "the notifier's 'email not sent' log lines (each a retry after SEND_RETRY_SECONDS, "
            "warm-up included): "
            + (", ".join(f"{n} x {reason!r}" for reason, n in retries.most_common()) or "none")
        )
        ok = _report_latency(sent, count, rate) and ok
    except (RuntimeError, TimeoutError, httpx.HTTPError) as failure:
        ok = False
        print(f"send latency: could not measure: {failure!r}", flush=True)
        if current is not None:
            print(current.tail(), flush=True)
    finally:
        ok = dev_stack.tear_down(current, data_dir, workdir) and ok
    return ok


def not_sent_reasons(log_path: Path) -> Counter[str]:
    """The reasons of the notifier's ``email not sent`` warnings in its JSON log."""
    reasons: Counter[str] = Counter()
    lines = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    for line in lines:
        if '"email not sent"' in line:
            with contextlib.suppress(ValueError):
                reasons[str(json.loads(line).get("reason"))] += 1
    return reasons


def _report_latency(sent: dict[str, Sent], count: int, rate: float) -> bool:
    answers = Counter(s.status for s in sent.values())
    latencies = [s.arrivals[0] - s.posted for s in sent.values() if s.arrivals]
    posts = [s.answered - s.posted for s in sent.values()]
    once = sum(1 for s in sent.values() if len(s.arrivals) == 1)
    twice = sum(1 for s in sent.values() if len(s.arrivals) > 1)
    missing = sum(1 for s in sent.values() if not s.arrivals)
    say(
        "answers to POST /send: "
        + ", ".join(f"{n} x {status}" for status, n in sorted(answers.items()))
        + f"; their own time {_spread(posts)}"
    )
    p95 = percentile(latencies, 0.95) if latencies else float("inf")
    stamped = [
        (s.posted, s.sent_at, s.fired_at, s.arrivals[0])
        for s in sent.values()
        if s.arrivals and s.arrivals[0] - s.posted < RETRIED_SECONDS
        if s.sent_at is not None and s.fired_at is not None
    ]
    if stamped:
        hops = (
            ("the POST to invoice-api's sent_at", [b - a for a, b, _, _ in stamped]),
            ("then to the scheduler's fired_at", [c - b for _, b, c, _ in stamped]),
            ("then to the catcher", [d - c for _, _, c, d in stamped]),
        )
        say(
            f"{len(stamped)} emails without a retry, by hop: "
            + "; ".join(
                f"{name} p50 {_ms(percentile(v, 0.5))}, p95 {_ms(percentile(v, 0.95))}"
                for name, v in hops
            )
        )
    late = [s for s in latencies if s >= RETRIED_SECONDS]
    if late:
        rest = [s for s in latencies if s < RETRIED_SECONDS]
        say(
            f"{len(late)} of {len(latencies)} emails took {RETRIED_SECONDS:.0f} s or more "
            f"({_spread(late)}); the others {_spread(rest)}"
        )
    print(
        figure(
            "POST /send to the issuance email at the SMTP catcher",
            f"p95 {_ms(p95)}",
            f"p95 < {_ms(TARGET_SEND_P95_SECONDS)}",
            p95 < TARGET_SEND_P95_SECONDS,
            f"{number(len(latencies))} invoices at {rate:g}/s on make dev's stack: "
            f"{_spread(latencies)}",
        ),
        flush=True,
    )
    ok = answers == Counter({200: count}) and once == count
    print(
        f"send latency delivery: {once} of {count} invoices with exactly one issuance email "
        f"({twice} with more, {missing} with none): " + ("OK" if ok else "FAILED"),
        flush=True,
    )
    return ok


# webhooks: nine partners that answer, with and without a tenth that never does


@dataclass
class Phase:
    name: str
    started: datetime
    ended: datetime
    events: int
    latencies: list[float]  # of the deliveries to the nine answering partners
    expected: int
    arrived: int
    repeated: int  # deliveries to the nine that arrived more than once
    slow_attempts: int = 0
    service_cpu: float = 0.0

    @property
    def ok(self) -> bool:
        return self.arrived == self.expected

    def line(self) -> str:
        return (
            f"{self.name}: {number(self.events)} events, {number(self.arrived)} of "
            f"{number(self.expected)} deliveries to the nine arrived ({self.repeated} more than "
            f"once); latency {_spread(self.latencies)}; requests to the silent partner "
            f"{self.slow_attempts}; the service's CPU {self.service_cpu:.1f} s"
        )


class Partners:
    """Ten partner HTTP servers in a child process; the last one never answers. Each
    request's arrival is written to a log: ``<time.time()> <port> <webhook-id>``."""

    def __init__(self, workdir: Path) -> None:
        self.ports = [free_port() for _ in range(PARTNERS)]
        self.slow_port = self.ports[-1]
        self.log_path = workdir / "partners.txt"
        self._out = (workdir / "partners.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.notifier",
                "partners",
                str(self.log_path),
                *map(str, self.ports),
            ],
            cwd=ROOT,
            stdout=self._out,
            stderr=self._out,
        )
        for port in self.ports:
            wait_for_port(port, 30)

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}/relance"

    def arrivals(self) -> list[tuple[float, int, str]]:
        found = []
        text = self.log_path.read_text() if self.log_path.exists() else ""
        for line in text.splitlines():
            at, port, webhook_id = line.split(" ", 2)
            found.append((float(at), int(port), webhook_id))
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self._out.close()


async def _partner_servers(log_path: Path, ports: list[int]) -> None:
    """What ``Partners`` runs: the last port reads each request and never answers."""
    log = log_path.open("a", buffering=1)
    silent = ports[-1]

    def serve(port: int) -> Any:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    arrived = time.time()
                    length, webhook_id = 0, ""
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        name = name.strip().lower()
                        if name == b"content-length":
                            length = int(value)
                        elif name == b"webhook-id":
                            webhook_id = value.strip().decode()
                    await reader.readexactly(length)
                    log.write(f"{arrived:.6f} {port} {webhook_id}\n")
                    if port == silent:
                        await asyncio.Event().wait()  # never answers
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                    await writer.drain()
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                pass
            finally:
                writer.close()

        return handle

    servers = [await asyncio.start_server(serve(p), "127.0.0.1", p) for p in ports]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    log.close()


async def _add_endpoint(database: Database, organization_id: uuid.UUID, url: str) -> uuid.UUID:
    endpoint_id = uuid.uuid4()
    async with database.transaction() as session:
        await webhooks_repo.add_endpoint(
            session,
            {
                "id": endpoint_id,
                "organization_id": organization_id,
                "url": url,
                "event_types": ["invoice.sent"],
                "secret": "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(),
                "created_at": datetime.now(UTC),
            },
        )
    return endpoint_id


async def _emit(database: Database, cases: list[Case], rate: float) -> None:
    """One ``invoice.sent`` per case at ``rate`` a second, each applied in its own
    transaction as the consumer applies it; the event's time is when it is applied."""
    start = time.monotonic()
    for index, case in enumerate(cases):
        await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
        await apply_events(database, [invoice_sent(case, datetime.now(UTC))], 1)


DELIVERIES_OF_PHASE = """
SELECT id, endpoint_id, created_at, state FROM webhook_deliveries
WHERE created_at >= $1 AND created_at <= $2
"""


async def _phase(
    name: str,
    database: Database,
    connection: asyncpg.Connection,
    service: ServiceProcess,
    partners: Partners,
    nine: set[uuid.UUID],
    cases: list[Case],
    rate: float,
) -> Phase:
    cpu = service.cpu_seconds()
    started = datetime.now(UTC)
    await _emit(database, cases, rate)
    ended = datetime.now(UTC)
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while time.monotonic() < deadline:
        rows = await connection.fetch(DELIVERIES_OF_PHASE, started, ended)
        if all(r["state"] == "delivered" for r in rows if r["endpoint_id"] in nine):
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)  # the partner log's last lines
    first: dict[str, float] = {}
    times: Counter[str] = Counter()
    slow = 0
    for at, port, webhook_id in partners.arrivals():
        if port == partners.slow_port:
            slow += datetime.fromtimestamp(at, UTC) >= started
            continue
        times[webhook_id] += 1
        first[webhook_id] = min(at, first.get(webhook_id, at))
    expected = [r for r in rows if r["endpoint_id"] in nine]
    latencies = [first[r["id"]] - r["created_at"].timestamp() for r in expected if r["id"] in first]
    return Phase(
        name=name,
        started=started,
        ended=ended,
        events=len(cases),
        latencies=latencies,
        expected=len(expected),
        arrived=len(latencies),
        repeated=sum(1 for r in expected if times[r["id"]] > 1),
        slow_attempts=slow,
        service_cpu=service.cpu_seconds() - cpu,
    )


async def _webhooks(
    postgres: EmbeddedPostgres, workdir: Path, rate: float, seconds: int
) -> list[Phase]:
    name = "relance_bench_webhooks"
    await create_databases(postgres.dsn(), [name])
    url = postgres.url(name)
    await asyncio.to_thread(upgrade, "relance.notifier", url)
    today = local_today(SystemClock(), TIMEZONE)
    count = max(1, round(rate * seconds))
    made = make_cases(2 * count, 7, today)
    organization = made[0].organization
    cases = [replace(case, organization=organization) for case in made]
    partners = Partners(workdir)
    database = Database(url, pool_size=2)
    connection = await asyncpg.connect(postgres.dsn(name))
    service: ServiceProcess | None = None
    try:
        nine = {
            await _add_endpoint(database, organization.id, partners.url(port))
            for port in partners.ports[:-1]
        }
        service = ServiceProcess(
            "relance.notifier",
            NotifierSettings,
            notifier_environ(url, RUN_SENDING="false"),
            workdir / "notifier-webhooks.log",
        )
        await service.wait_started()
        say(
            f"notifier ready (pid {service.process.pid}, webhook loop only, its default "
            f"concurrency {NotifierSettings().webhook_concurrency} and timeout "
            f"{NotifierSettings().webhook_timeout_seconds:g} s); partners on "
            f"{partners.ports[0]}..., the silent one on {partners.slow_port}"
        )
        without = await _phase(
            "nine partners alone",
            database,
            connection,
            service,
            partners,
            nine,
            cases[:count],
            rate,
        )
        say(without.line())
        await _add_endpoint(database, organization.id, partners.url(partners.slow_port))
        with_slow = await _phase(
            "the same with a tenth that never answers",
            database,
            connection,
            service,
            partners,
            nine,
            cases[count : 2 * count],
            rate,
        )
        say(with_slow.line())
        in_flight = await connection.fetchval(
            "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id <> ALL($1::uuid[]) "
            "AND state = 'pending'",
            list(nine),
        )
        say(f"the silent partner's deliveries still pending (in flight or waiting): {in_flight}")
        return [without, with_slow]
    finally:
        await connection.close()
        await database.dispose()
        if service is not None:
            service.stop()
        partners.stop()


def run_webhooks(
    rate: float = DEFAULT_WEBHOOK_RATE, seconds: int = DEFAULT_WEBHOOK_SECONDS
) -> bool:
    """Run ``webhooks`` and print its figures; False if a delivery to an answering partner
    never arrived."""
    print(
        f"== notifier webhooks: {PARTNERS} partner endpoints, one never answers; "
        f"invoice.sent at {rate:g} a second for {seconds} s per phase, {os.cpu_count()} CPUs, "
        f"load average {load_average()} ==",
        flush=True,
    )
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-webhooks-"))
    postgres: EmbeddedPostgres | None = None
    try:
        postgres = EmbeddedPostgres(workdir / "postgres")
        say(f"embedded PostgreSQL in {workdir / 'postgres'}; logs in {workdir}")
        without, with_slow = asyncio.run(_webhooks(postgres, workdir, rate, seconds))
    except RuntimeError as exc:
        print(f"notifier webhooks: FAILED: {exc}", flush=True)
        return False
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    p95 = [
        percentile(p.latencies, 0.95) if p.latencies else float("inf") for p in (without, with_slow)
    ]
    p50 = [
        percentile(p.latencies, 0.5) if p.latencies else float("inf") for p in (without, with_slow)
    ]
    ratio = p95[1] / p95[0]
    print(
        figure(
            "webhooks to nine partners, p95 with a tenth that never answers / without",
            f"{ratio:.2f}",
            f"<= {TARGET_WEBHOOK_RATIO}",
            ratio <= TARGET_WEBHOOK_RATIO,
            f"without p50 {_ms(p50[0])}, p95 {_ms(p95[0])}; with p50 {_ms(p50[1])}, "
            f"p95 {_ms(p95[1])} (p50 ratio {p50[1] / p50[0]:.2f}); {rate:g} events/s",
        ),
        flush=True,
    )
    ok = without.ok and with_slow.ok
    print(
        "notifier webhooks delivery: every delivery to the nine answering partners arrived: "
        + ("OK" if ok else "FAILED"),
        flush=True,
    )
    return ok


def _main(argv: Sequence[str]) -> int:
    if len(argv) >= 3 and argv[0] == "partners":
        asyncio.run(_partner_servers(Path(argv[1]), [int(p) for p in argv[2:]]))
        return 0
    print("usage: python -m benchmarks.notifier partners LOG PORT...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
