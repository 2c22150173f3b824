"""``make bench``: run the benchmarks and print their figures (see BENCHMARKS.md).

Each figure is printed on one line with its target and ``OK`` or ``SHORT``. A figure that
falls short does not fail the run (timings on a shared machine are noisy); the exit code
is 1 only when something is wrong rather than slow: events lost or duplicated by the relay,
the development stack not starting or not stopping cleanly, an invoice API request that
failed or a row or page that is not what it should be, a scheduler step whose
``reminder.due`` is missing or published twice (or a PGQueuer job not run), or a notifier
email lost or sent twice, an invoice without exactly one issuance email, or a webhook to
an answering partner that never arrived.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Sequence

from benchmarks import (
    dev_stack,
    invoice_api,
    matching_service,
    notifier,
    org_key,
    outbox_relay,
    payment_matching,
    scheduler,
)

BENCHMARKS = (
    "relay",
    "startup",
    "org-key",
    "invoices-post",
    "invoices-list",
    "firing",
    "firing-lag",
    "emails",
    "send-latency",
    "webhooks",
    "matching",
    "matching-service",
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure Relance: outbox relay throughput against a bare aiokafka "
        "producer (relay), `make dev` start time with each service's idle memory "
        "(startup), POST /v1/invoices throughput against a bare FastAPI app (invoices-post) "
        "GET /v1/invoices?status=to_collect latency over 100,000 invoices "
        "(invoices-list), the scheduler firing 100,000 due steps to the broker with "
        "1,000,000 more planned, against PGQueuer and the bare claim statement (firing), and "
        "the lag of steps due at a steady rate (firing-lag), the notifier's emails per second "
        "against a bare aiosmtplib loop (emails), the time from POST /v1/invoices/{id}/send to "
        "the issuance email on the make dev stack (send-latency), and partner webhooks next to "
        "a partner that never answers (webhooks), and the payment-matching rules' precision, "
        "recall and speed on generated statements (matching), and 10,000 credits imported "
        "through the payment-matcher's HTTP API against 100,000 open invoices "
        "(matching-service), and how soon a new organization's key works on all four services "
        "(org-key). Prints figures; never asserts "
        "timings.",
    )
    parser.add_argument(
        "--only",
        choices=BENCHMARKS,
        action="append",
        help="run only this benchmark (may be given twice; default: all)",
    )
    parser.add_argument(
        "--events",
        type=_positive,
        default=outbox_relay.DEFAULT_EVENTS,
        metavar="N",
        help=f"events the relay publishes per round (default: {outbox_relay.DEFAULT_EVENTS:,})",
    )
    parser.add_argument(
        "--repeat",
        type=_positive,
        default=1,
        metavar="R",
        help="rounds of the relay benchmark, each on a new database and broker, the median "
        "reported; of firing, R rounds per batch setting, the best reported; of firing-lag, "
        "R rounds pooled; of emails, R rounds each on a new database, the median reported "
        "(default: 1)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a cProfile of the relay's first round, and of the invoice-api server "
        "during invoices-post, and a py-spy profile of the scheduler during each burst of "
        "firing, and a cProfile of the notifier's process in emails (which slows them down)",
    )
    parser.add_argument(
        "--requests",
        type=_positive,
        default=invoice_api.DEFAULT_POSTS,
        metavar="N",
        help=f"POST /v1/invoices requests of invoices-post, and of its baseline "
        f"(default: {invoice_api.DEFAULT_POSTS:,})",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive,
        default=invoice_api.DEFAULT_CONCURRENCY,
        metavar="C",
        help=f"requests in flight in invoices-post (default: {invoice_api.DEFAULT_CONCURRENCY})",
    )
    parser.add_argument(
        "--client",
        choices=tuple(invoice_api.CLIENTS),
        default="raw",
        help="how invoices-post sends its requests: a minimal keep-alive HTTP/1.1 client on "
        "asyncio streams (raw, the default: it leaves the CPU to the server), or one "
        "httpx.AsyncClient per request in flight (httpx)",
    )
    parser.add_argument(
        "--invoices",
        type=_positive,
        default=invoice_api.DEFAULT_LIST_INVOICES,
        metavar="N",
        help=f"invoices loaded for invoices-list (default: {invoice_api.DEFAULT_LIST_INVOICES:,})",
    )
    parser.add_argument(
        "--steps",
        type=_positive,
        default=scheduler.DEFAULT_DUE,
        metavar="N",
        help=f"steps due at the same instant in firing, and PGQueuer jobs "
        f"(default: {scheduler.DEFAULT_DUE:,})",
    )
    parser.add_argument(
        "--future",
        type=_positive,
        default=scheduler.DEFAULT_FUTURE,
        metavar="N",
        help=f"steps planned in the future in the same table, for firing and firing-lag "
        f"(default: {scheduler.DEFAULT_FUTURE:,})",
    )
    parser.add_argument(
        "--batches",
        type=_batches,
        action="append",
        metavar="F:O",
        help="firing batch size F and outbox batch size O of a firing round (may be given "
        "several times; default: "
        + ", ".join(f"{f}:{o}" for f, o in scheduler.DEFAULT_BATCHES)
        + ", the service's defaults first)",
    )
    parser.add_argument(
        "--lag-rate",
        type=_positive,
        default=scheduler.DEFAULT_LAG_RATE,
        metavar="S",
        help=f"steps due per second in firing-lag (default: {scheduler.DEFAULT_LAG_RATE})",
    )
    parser.add_argument(
        "--lag-seconds",
        type=_positive,
        default=scheduler.DEFAULT_LAG_SECONDS,
        metavar="T",
        help=f"seconds of steps in firing-lag (default: {scheduler.DEFAULT_LAG_SECONDS})",
    )
    parser.add_argument(
        "--uvloop",
        action="store_true",
        help="firing and firing-lag on uvloop: the scheduler as `python -m relance.scheduler "
        "serve` (uvicorn takes uvloop when it is installed) and PGQueuer's consumers "
        "(default: the asyncio loop, as a production install without uvloop runs them)",
    )
    parser.add_argument(
        "--emails",
        type=_positive,
        default=notifier.DEFAULT_EMAILS,
        metavar="N",
        help=f"due steps the notifier sends per round of emails, and messages of its bare "
        f"aiosmtplib baseline (default: {notifier.DEFAULT_EMAILS:,})",
    )
    parser.add_argument(
        "--send-invoices",
        type=_positive,
        default=notifier.DEFAULT_SEND_INVOICES,
        metavar="N",
        help=f"invoices sent in send-latency (default: {notifier.DEFAULT_SEND_INVOICES})",
    )
    parser.add_argument(
        "--send-rate",
        type=_positive_rate,
        default=notifier.DEFAULT_SEND_RATE,
        metavar="R",
        help=f"POST /send per second in send-latency (default: {notifier.DEFAULT_SEND_RATE:g})",
    )
    parser.add_argument(
        "--webhook-rate",
        type=_positive_rate,
        default=notifier.DEFAULT_WEBHOOK_RATE,
        metavar="R",
        help=f"invoice.sent events per second in each phase of webhooks, each one a delivery "
        f"to every endpoint (default: {notifier.DEFAULT_WEBHOOK_RATE:g})",
    )
    parser.add_argument(
        "--webhook-seconds",
        type=_positive,
        default=notifier.DEFAULT_WEBHOOK_SECONDS,
        metavar="T",
        help=f"seconds of events in each phase of webhooks "
        f"(default: {notifier.DEFAULT_WEBHOOK_SECONDS})",
    )
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def _positive_rate(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive rate, not {text}")
    return value


def _batches(text: str) -> tuple[int, int]:
    try:
        return scheduler.parse_batches(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    selected = args.only or list(BENCHMARKS)
    print(
        f"Relance benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, "
        f"Python {platform.python_version()}, {platform.machine()}",
        flush=True,
    )
    ok = True
    started = time.monotonic()
    if "relay" in selected:
        ok = outbox_relay.run(args.events, repeat=args.repeat, profile=args.profile) and ok
    if "startup" in selected:
        ok = dev_stack.run() and ok
    if "org-key" in selected:
        ok = org_key.run() and ok
    if "invoices-post" in selected:
        options = invoice_api.PostOptions(
            args.requests, args.concurrency, args.client, profile=args.profile
        )
        ok = invoice_api.run_post(options) and ok
    if "invoices-list" in selected:
        ok = invoice_api.run_list(args.invoices) and ok
    if "firing" in selected or "firing-lag" in selected:
        firing_options = scheduler.Options(
            due=args.steps,
            future=args.future,
            batches=tuple(args.batches or scheduler.DEFAULT_BATCHES),
            repeat=args.repeat,
            lag_rate=args.lag_rate,
            lag_seconds=args.lag_seconds,
            uvloop=args.uvloop,
            profile=args.profile,
        )
        ok = (
            scheduler.run(firing_options, firing="firing" in selected, lag="firing-lag" in selected)
            and ok
        )
    if "emails" in selected:
        ok = notifier.run_emails(args.emails, repeat=args.repeat, profile=args.profile) and ok
    if "send-latency" in selected:
        ok = notifier.run_send_latency(args.send_invoices, args.send_rate) and ok
    if "webhooks" in selected:
        ok = notifier.run_webhooks(args.webhook_rate, args.webhook_seconds) and ok
    if "matching" in selected:
        ok = payment_matching.run() and ok
    if "matching-service" in selected:
        ok = matching_service.run(profile=args.profile) and ok
    print(f"benchmarks done in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
