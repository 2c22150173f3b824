"""``make dev``: the whole system on the embedded stack, in the foreground.

Starts PostgreSQL (one database per service), the broker and the SMTP catcher (unless the
environment names real ones), migrates each service's database, starts the four services,
waits until each answers ``/readyz`` and prints where everything is. Ctrl-C or SIGTERM
stops the services, then the stack, and keeps the data for the next start.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import httpx
from sqlalchemy.engine import make_url

from relance.common.migrations import upgrade
from relance.devstack.ports import PortTaken, require_free
from relance.devstack.processes import child_process_options
from relance.devstack.stack import SERVICES, Service, Stack

DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - printed to the developer; set ADMIN_TOKEN for anything else
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


class Stop(Exception):
    """Ctrl-C or SIGTERM: stop everything cleanly."""


@dataclass
class RunningService:
    service: Service
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    log: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, lines: int = 15) -> str:
        self.log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="relance-dev",
        description="Run the four Relance services on the embedded stack (PostgreSQL, a "
        "Kafka-protocol broker and an SMTP catcher), in the foreground. Ctrl-C stops everything.",
        epilog="DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, SMTP_HOST/SMTP_PORT and ADMIN_TOKEN from "
        "the environment replace the embedded parts.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".relance"),
        help="where databases, mails and logs are kept (default: .relance)",
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=8000,
        help="port of invoice-api; the others follow (default: 8000)",
    )
    parser.add_argument(
        "--kafka-port", type=int, default=9092, help="port of the embedded broker (default: 9092)"
    )
    parser.add_argument(
        "--smtp-port", type=int, default=1025, help="port of the SMTP catcher (default: 1025)"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    data_dir: Path = args.data_dir.resolve()
    started = time.monotonic()

    def stop_on_signal(signum: int, _frame: FrameType | None) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)

    stack = Stack(
        data_dir=data_dir,
        kafka_port=args.kafka_port,
        smtp_port=args.smtp_port,
        environ=dict(os.environ),
    )
    ports = {s.name: args.port_base + index for index, s in enumerate(SERVICES)}
    running: list[RunningService] = []
    try:
        try:
            for service in SERVICES:
                require_free(
                    ports[service.name], service.name, "stop what uses it or pass --port-base"
                )
            stack.check_ports()
        except PortTaken as taken:
            print(f"relance-dev: {taken}", file=sys.stderr)
            return 2
        say("starting PostgreSQL, the broker and the SMTP catcher...")
        stack.start()
        say("migrating the databases...")
        for service in SERVICES:
            upgrade(service.package, stack.database_urls[service.name])
        admin_token = os.environ.get("ADMIN_TOKEN", DEV_ADMIN_TOKEN)
        running = [launch(service, ports[service.name], stack, admin_token) for service in SERVICES]
        wait_until_ready(running)
        print_summary(stack, running, admin_token, time.monotonic() - started)
        while True:
            for item in running:
                if item.process.poll() is not None:
                    say(
                        f"{item.service.name} exited with code {item.process.returncode}; "
                        f"last lines of {item.log_path}:"
                    )
                    print(item.log_tail(), file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except Stop as reason:
        say(f"{reason}: stopping...")
        return 0
    except Exception as failure:  # any failure to start is a message, not a traceback
        say(f"could not start: {failure}")
        return 1
    finally:
        signal.signal(
            signal.SIGINT, signal.SIG_IGN
        )  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_services(running)
        stack.stop()
        if running:
            say(f"stopped; data kept in {data_dir} for the next start")


def launch(service: Service, port: int, stack: Stack, admin_token: str) -> RunningService:
    log_path = stack.data_dir / "logs" / f"{service.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    environ = {
        **os.environ,
        "DATABASE_URL": stack.database_urls[service.name],
        "KAFKA_BOOTSTRAP_SERVERS": stack.bootstrap_servers,
        "SMTP_HOST": stack.smtp_host,
        "SMTP_PORT": str(stack.smtp_port_in_use),
        "ADMIN_TOKEN": admin_token,
        "HOST": "127.0.0.1",
        "PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", service.package, "serve"],
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
        **child_process_options(),
    )
    return RunningService(service, port, process, log_path, log)


def wait_until_ready(running: list[RunningService]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    waiting = list(running)
    with httpx.Client(timeout=2.0) as client:
        while waiting:
            for item in list(waiting):
                if item.process.poll() is not None:
                    raise RuntimeError(
                        f"{item.service.name} exited at start-up:\n{item.log_tail()}"
                    )
                try:
                    if client.get(f"{item.url}/readyz").status_code == 200:
                        waiting.remove(item)
                except httpx.HTTPError:
                    pass
            if waiting and time.monotonic() > deadline:
                names = ", ".join(item.service.name for item in waiting)
                raise TimeoutError(f"not ready after {READY_TIMEOUT_SECONDS:.0f} s: {names}")
            if waiting:
                time.sleep(0.1)


def stop_services(running: list[RunningService]) -> None:
    for item in running:
        if item.process.poll() is None:
            item.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for item in running:
        try:
            item.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            item.process.kill()
            item.process.wait()
        item.log.close()


def print_summary(
    stack: Stack, running: list[RunningService], admin_token: str, seconds: float
) -> None:
    width = max(len(s.name) for s in SERVICES) + 2
    lines = [f"Relance is ready ({seconds:.1f} s):"]
    lines += [
        f"  {item.service.name:<{width}} {item.url}  (API docs: {item.url}/docs)"
        for item in running
    ]
    database = "embedded PostgreSQL 18" if stack.postgres else "PostgreSQL from DATABASE_URL"
    lines.append(f"  {'databases':<{width}} {database}, one per service:")
    lines += [
        f"  {'':<{width}}   {name}: {make_url(url).render_as_string(hide_password=True)}"
        for name, url in stack.database_urls.items()
    ]
    lines.append(f"  {'broker':<{width}} {stack.bootstrap_servers}")
    if stack.mail:
        lines.append(
            f"  {'mail':<{width}} SMTP catcher on {stack.mail.host}:{stack.mail.port}; "
            f"every mail kept in {stack.mail_dir}/*.eml"
        )
    else:
        lines.append(f"  {'mail':<{width}} sent to {stack.smtp_host}:{stack.smtp_port_in_use}")
    lines.append(
        f"  {'admin token':<{width}} {admin_token}  "
        "(header X-Admin-Token on POST /v1/organizations)"
    )
    lines.append(f"  {'logs':<{width}} {stack.data_dir / 'logs'}/<service>.log")
    lines.append("Ctrl-C stops everything; the data stays for the next start.")
    print("\n".join(lines), flush=True)


def say(message: str) -> None:
    print(f"relance-dev: {message}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
