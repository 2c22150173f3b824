"""How soon a new organization's API key works on all four services, on ``make dev``'s stack.

invoice-api creates the organization and answers its key; the scheduler, notifier and
payment-matcher learn the key from ``organization.saved`` (outbox, relay, broker, consumer).
Each round creates an organization and then asks each service, every 5 ms, for a page that
needs the key, until all four answer 200; the time from the 201 to the last 200 is the
round's figure. The first round runs the moment ``relance-dev`` prints that it is ready,
after a start on a data folder that already exists (the everyday start), so that it
includes whatever a service still has to do after saying ready.

The baseline, measured in the same rounds, is invoice-api itself, which owns the key: its
first answer should be 200 (a 2xx means saved), so its time is one request's.

Then, on the same stack, the latency of a write as a client sees it: ``WRITES`` sequential
``POST /v1/customers``, each answered only once committed (the figure to compare with a
tree where the commit came after the answer).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.dev_stack import DevProcess, pick_ports, tear_down
from benchmarks.report import figure, say
from relance.devstack.supervisor import DEV_ADMIN_TOKEN

DEFAULT_ROUNDS = 200
WRITES = 500
TARGET_P99_SECONDS = 1.0
POLL_SECONDS = 0.005
GIVE_UP_SECONDS = 30.0


def probes(base: int) -> list[tuple[str, str, str, dict[str, str] | None]]:
    """(service, method, url, json body) of a cheap request that needs the key."""
    return [
        ("invoice-api", "GET", f"http://127.0.0.1:{base}/v1/customers?limit=1", None),
        (
            "scheduler",
            "POST",
            f"http://127.0.0.1:{base + 1}/v1/plans/preview",
            {"sent_on": "2026-03-02", "due_on": "2026-03-31"},
        ),
        ("notifier", "GET", f"http://127.0.0.1:{base + 2}/v1/webhook-endpoints", None),
        ("payment-matcher", "GET", f"http://127.0.0.1:{base + 3}/v1/matches?limit=1", None),
    ]


async def until_accepted(
    client: httpx.AsyncClient, method: str, url: str, body: object, key: str, since: float
) -> float:
    headers = {"Authorization": f"Bearer {key}"}
    while True:
        answer = await client.request(method, url, json=body, headers=headers)
        if answer.status_code == 200:
            return time.perf_counter() - since
        if answer.status_code != 401:
            raise RuntimeError(f"{method} {url} answered {answer.status_code}: {answer.text}")
        if time.perf_counter() - since > GIVE_UP_SECONDS:
            raise RuntimeError(f"the key did not work on {url} after {GIVE_UP_SECONDS:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


async def one_round(client: httpx.AsyncClient, base: int, name: str) -> dict[str, float]:
    created = await client.post(
        f"http://127.0.0.1:{base}/v1/organizations",
        json={"name": name},
        headers={"X-Admin-Token": DEV_ADMIN_TOKEN},
    )
    if created.status_code != 201:
        raise RuntimeError(f"POST /v1/organizations answered {created.status_code}")
    since = time.perf_counter()
    key = created.json()["api_key"]
    found = await asyncio.gather(
        *(until_accepted(client, m, url, body, key, since) for _, m, url, body in probes(base))
    )
    return {service: seconds for (service, *_), seconds in zip(probes(base), found, strict=True)}


async def measure(base: int, rounds: int) -> tuple[list[dict[str, float]], list[float]]:
    async with httpx.AsyncClient(timeout=10) as client:
        results = [await one_round(client, base, f"Atelier {i}") for i in range(rounds)]
        created = await client.post(
            f"http://127.0.0.1:{base}/v1/organizations",
            json={"name": "Atelier"},
            headers={"X-Admin-Token": DEV_ADMIN_TOKEN},
        )
        headers = {"Authorization": f"Bearer {created.json()['api_key']}"}
        writes = []
        for i in range(WRITES):
            started = time.perf_counter()
            answer = await client.post(
                f"http://127.0.0.1:{base}/v1/customers",
                json={"name": f"Client {i}"},
                headers=headers,
            )
            writes.append(time.perf_counter() - started)
            if answer.status_code != 201:
                raise RuntimeError(f"POST /v1/customers answered {answer.status_code}")
        return results, writes


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(rounds: int = DEFAULT_ROUNDS) -> bool:
    print(f"== a new organization's key on all four services ({os.cpu_count()} CPUs) ==")
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-key-"))
    data_dir = workdir / "data"
    current: DevProcess | None = None
    ok = True
    try:
        ports = pick_ports()
        current = DevProcess.launch(data_dir, ports)
        current.wait_ready()
        current.stop()  # the first start initialises the data folder; measure the everyday one
        current = DevProcess.launch(data_dir, ports)
        current.wait_ready()
        results, writes = asyncio.run(measure(ports.base, rounds))
        everywhere = [max(r.values()) for r in results]
        own = [r["invoice-api"] for r in results]
        p99 = percentile(everywhere, 0.99)
        for service in ("scheduler", "notifier", "payment-matcher"):
            values = [r[service] for r in results]
            say(
                f"{service}: median {statistics.median(values) * 1000:.0f} ms, "
                f"p99 {percentile(values, 0.99) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
            )
        say(
            f"first organization after ready: {everywhere[0] * 1000:.0f} ms; "
            f"invoice-api alone (baseline): median {statistics.median(own) * 1000:.1f} ms, "
            f"max {max(own) * 1000:.1f} ms"
        )
        print(
            figure(
                "new key on all four services",
                f"p99 {p99 * 1000:.0f} ms",
                f"< {TARGET_P99_SECONDS * 1000:.0f} ms",
                p99 < TARGET_P99_SECONDS,
                f"{rounds} organizations, median {statistics.median(everywhere) * 1000:.0f} ms, "
                f"max {max(everywhere) * 1000:.0f} ms, first after ready "
                f"{everywhere[0] * 1000:.0f} ms; ratio to invoice-api alone "
                f"{statistics.median(everywhere) / statistics.median(own):.0f}x at the median",
            ),
            flush=True,
        )
        say(
            f"write latency, {WRITES} sequential POST /v1/customers: median "
            f"{statistics.median(writes) * 1000:.1f} ms, p95 {percentile(writes, 0.95) * 1000:.1f}"
            f" ms, p99 {percentile(writes, 0.99) * 1000:.1f} ms"
        )
    except (RuntimeError, TimeoutError) as failure:
        ok = False
        print(f"org-key: could not measure: {failure}", flush=True)
        if current is not None:
            print(current.tail(), flush=True)
    finally:
        ok = tear_down(current, data_dir, workdir) and ok
    return ok
