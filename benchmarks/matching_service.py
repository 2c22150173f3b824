"""``matching-service``: 10,000 bank credits imported through the payment-matcher's HTTP API
against an organization with 100,000 open invoices.

The organization, its open invoices and its payers are loaded into the service's own tables
of a fresh embedded PostgreSQL (as its handlers keep them from invoice events), from the
seeded generator of ``benchmarks.payment_matching``. The service runs as ``relance-payment-
matcher serve`` does, in a child process, its consumers off and no broker (its events stay
in its outbox, which is checked). One ``POST /v1/bank-transactions`` carries the 10,000
credits; the figure is the time of that request (JSON validation, the open book loaded
from the database, matching, and the rows and events written), and the peak RSS of the
service process, sampled every 20 ms. The baseline, measured in the same run, is the
matching engine alone on the same data in this process (``evaluate``): the ratio says what
the service adds around the rules.

Correctness, which makes the run exit 1 when wrong: every credit imported once, a second
identical request all duplicates, one ``payment.matched`` event per allocation of the
automatic matches, and no invoice paid beyond its balance.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from benchmarks.payment_matching import (
    DEFAULT_CREDITS,
    DEFAULT_CUSTOMERS,
    DEFAULT_INVOICES,
    DEFAULT_SEED,
    TARGET_RSS_MB,
    TARGET_SECONDS,
    TODAY,
    Statement,
    evaluate,
    generate,
)
from benchmarks.report import figure, number, say
from benchmarks.stack import ServiceProcess
from relance.common.migrations import upgrade
from relance.common.tenancy import api_key_sha256
from relance.devstack.postgres import EmbeddedPostgres, create_databases
from relance.payment_matcher.settings import PaymentMatcherSettings

DATABASE = "relance_payment_matcher"
API_KEY = "rk_bench-matching-service"
MB = 1024 * 1024


def items_of(statement: Statement) -> list[dict[str, Any]]:
    """The credits as a bank feed would send them, in the generator's order (the service
    matches oldest first, then by reference: the same order here)."""
    items = []
    for n, labelled in enumerate(statement.credits):
        credit = labelled.credit
        item = {
            "bank_reference": f"BENCH-{n:06d}",
            "booked_on": TODAY.isoformat(),
            "amount": format(credit.amount, "f"),
            "currency": credit.currency,
            "counterparty_name": credit.counterparty_name,
            "counterparty_iban": credit.counterparty_iban,
            "remittance_info": credit.remittance_info,
            "creditor_reference": credit.creditor_reference,
        }
        items.append({k: v for k, v in item.items() if v is not None})
    return items


async def load(dsn: str, org_id: uuid.UUID, statement: Statement) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "INSERT INTO tenants (id, api_key_sha256, name, country, timezone, locale,"
            " reminder_time, saved_at) VALUES ($1, $2, 'Atelier Dupont', 'FR', 'Europe/Paris',"
            " 'fr', '09:00', now())",
            org_id,
            api_key_sha256(API_KEY),
        )
        await connection.copy_records_to_table(
            "open_invoices",
            records=[
                (
                    i.invoice_id,
                    org_id,
                    i.customer_id,
                    i.number,
                    i.payment_reference,
                    i.currency,
                    i.balance,
                    i.due_date,
                    i.sent_on,
                )
                for i in statement.invoices
            ],
            columns=[
                "invoice_id",
                "organization_id",
                "customer_id",
                "number",
                "payment_reference",
                "currency",
                "balance",
                "due_date",
                "sent_on",
            ],
        )
        await connection.copy_records_to_table(
            "payers",
            records=[
                (p.customer_id, org_id, p.names[0], list(p.ibans), list(p.names[1:]), [])
                for p in statement.payers
            ],
            columns=[
                "customer_id",
                "organization_id",
                "name",
                "ibans",
                "learned_names",
                "learned_ibans",
            ],
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


class PeakRss:
    """The highest RSS of a process, sampled in a thread while a block runs."""

    def __init__(self, process: psutil.Process) -> None:
        self.process = process
        self.peak = process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def check(dsn: str) -> tuple[bool, str]:
    """Events and balances as they must be after the import."""
    connection = await asyncpg.connect(dsn)
    try:
        row = await connection.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM bank_transactions) AS transactions,
              (SELECT count(*) FROM match_allocations a JOIN matches m ON m.id = a.match_id
                WHERE m.state = 'matched') AS allocations,
              (SELECT count(*) FROM outbox WHERE event_type = 'payment.matched') AS matched_events,
              (SELECT count(*) FROM outbox WHERE event_type = 'payment.suggested')
                AS suggested_events,
              (SELECT count(*) FROM open_invoices WHERE balance < 0) AS below_zero
            """
        )
    finally:
        await connection.close()
    ok = row["allocations"] == row["matched_events"] and row["below_zero"] == 0
    detail = (
        f"{number(row['transactions'])} transactions stored, {number(row['matched_events'])} "
        f"payment.matched events for {number(row['allocations'])} allocations, "
        f"{number(row['suggested_events'])} payment.suggested, "
        f"{row['below_zero']} balances below zero"
    )
    return ok, detail


async def _round(
    postgres: EmbeddedPostgres, workdir: Path, statement: Statement, profile: bool
) -> bool:
    await create_databases(postgres.dsn(), [DATABASE])
    url = postgres.url(DATABASE)
    await asyncio.to_thread(upgrade, "relance.payment_matcher", url)
    org_id = uuid.uuid4()
    started = time.perf_counter()
    await load(postgres.dsn(DATABASE), org_id, statement)
    say(
        f"{number(len(statement.invoices))} open invoices and {number(len(statement.payers))} "
        f"payers loaded in {time.perf_counter() - started:.1f} s"
    )
    service = ServiceProcess(
        "relance.payment_matcher",
        PaymentMatcherSettings,
        {
            "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",  # none: the events stay in the outbox
            "RUN_CONSUMERS": "false",
            "LOG_LEVEL": "INFO",
        },
        workdir / "payment-matcher.log",
        profile=workdir.parent / "payment-matcher.prof" if profile else None,
    )
    try:
        await service.wait_started()
        items = items_of(statement)
        body = json.dumps({"items": items}).encode()
        headers = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
        async with httpx.AsyncClient(base_url=service.base_url, timeout=600) as client:
            cpu = service.cpu_seconds()
            with PeakRss(service.psutil) as rss:
                began = time.perf_counter()
                answer = await client.post("/v1/bank-transactions", content=body, headers=headers)
                seconds = time.perf_counter() - began
            cpu = service.cpu_seconds() - cpu
            again = await client.post("/v1/bank-transactions", content=body, headers=headers)
    finally:
        service.stop()
    for line in (workdir / "payment-matcher.log").read_text(errors="replace").splitlines():
        if "bank transactions imported" in line and "load_seconds" in line:
            say("the service's log: " + line.strip()[:400])
            break
    if answer.status_code != 202 or again.status_code != 202:
        print(f"matching service: FAILED: {answer.status_code} {answer.text[:500]}", flush=True)
        return False
    first, second = answer.json(), again.json()
    imported_ok = first["imported"] == len(items) and second == {
        **second,
        "imported": 0,
        "duplicates": len(items),
    }
    events_ok, detail = await check(postgres.dsn(DATABASE))
    say(
        f"answer: {first}; the same request again: imported {second['imported']}, "
        f"duplicates {number(second['duplicates'])}"
    )
    _, engine = evaluate(statement)
    engine_seconds = engine.build_seconds + engine.match_seconds
    peak = rss.peak / MB
    print(
        figure(
            "matching service: 10,000 credits in one POST /v1/bank-transactions",
            f"{seconds:.2f} s",
            f"<= {TARGET_SECONDS:.0f} s",
            seconds <= TARGET_SECONDS,
            f"{number(len(statement.invoices))} open invoices; service CPU {cpu:.2f} s; "
            f"{first['matched']} matched, {first['suggested']} suggested, "
            f"{first['unmatched']} unmatched",
        ),
        flush=True,
    )
    print(
        f"matching service / engine alone: {seconds / engine_seconds:.1f}x the time "
        f"(engine {engine_seconds:.2f} s: book built in {engine.build_seconds:.2f} s, "
        f"matched in {engine.match_seconds:.2f} s, in this process)",
        flush=True,
    )
    print(
        figure(
            "matching service: peak RSS of the service process",
            f"{peak:.0f} MB",
            f"< {TARGET_RSS_MB:.0f} MB",
            peak < TARGET_RSS_MB,
            "sampled every 20 ms during the request",
        ),
        flush=True,
    )
    ok = imported_ok and events_ok
    print(
        "matching service correctness: "
        + detail
        + (": OK" if ok else ": WRONG (a credit imported twice, or events or balances off)"),
        flush=True,
    )
    return ok


def run(
    credits: int = DEFAULT_CREDITS,
    invoices: int = DEFAULT_INVOICES,
    seed: int = DEFAULT_SEED,
    *,
    profile: bool = False,
) -> bool:
    """Run ``matching-service``; False if something was lost, doubled or refused. With
    ``profile``, the service runs under cProfile and leaves its statistics in the temporary
    folder's parent (``payment-matcher.prof``)."""
    print(
        f"== payment-matcher over HTTP: {number(credits)} credits against {number(invoices)} "
        f"open invoices (seed {seed}), {os.cpu_count()} CPUs, load average "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())} ==",
        flush=True,
    )
    statement = generate(
        random.Random(seed + 1),  # noqa: S311 - test data, not secrets
        invoices,
        DEFAULT_CUSTOMERS * invoices // DEFAULT_INVOICES or 1,
        credits,
    )
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-matching-"))
    postgres: EmbeddedPostgres | None = None
    try:
        postgres = EmbeddedPostgres(workdir / "postgres")
        say(f"embedded PostgreSQL in {workdir / 'postgres'}; the service logs to {workdir}")
        ok = asyncio.run(_round(postgres, workdir, statement, profile))
        if profile:
            say(f"cProfile statistics: {workdir.parent / 'payment-matcher.prof'}")
        return ok
    finally:
        if postgres is not None:
            postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
