"""The whole system as `make dev` runs it, for the end-to-end tests: ``dev_run`` starts the
supervisor on free ports in the test's folder and stops it afterwards."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from relance.devstack.ports import free_port
from relance.devstack.stack import SERVICES
from relance.devstack.supervisor import DEV_ADMIN_TOKEN

SUPERVISOR = [sys.executable, "-m", "relance.devstack.supervisor"]


def free_port_run(length: int) -> int:
    """The first of ``length`` consecutive free ports."""
    for _ in range(200):
        base = free_port()
        if base + length < 65535 and all(_is_free(base + i) for i in range(length)):
            return base
    raise RuntimeError("no run of free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def environment() -> dict[str, str]:
    """The caller's environment less the variables that would replace embedded parts."""
    replaced = {"DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "SMTP_HOST", "SMTP_PORT", "ADMIN_TOKEN"}
    return {k: v for k, v in os.environ.items() if k not in replaced}


class DevRun:
    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port_base = free_port_run(len(SERVICES))
        self.process = subprocess.Popen(
            [
                *SUPERVISOR,
                "--data-dir",
                str(data_dir),
                "--port-base",
                str(self.port_base),
                "--kafka-port",
                str(free_port()),
                "--smtp-port",
                str(free_port()),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**environment(), **(extra_env or {})},
        )
        self.output: list[str] = []

    def wait_ready(self, within: float = 120.0) -> None:
        assert self.process.stdout is not None
        deadline = time.monotonic() + within
        for line in self.process.stdout:
            self.output.append(line)
            if line.startswith("Ctrl-C stops everything"):
                return
            if time.monotonic() > deadline:
                break
        pytest.fail("relance-dev did not report ready:\n" + "".join(self.output))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        self.output.append(out or "")
        return self.process.returncode

    def leftovers(self) -> list[str]:
        """Processes still running that belong to this run."""
        marker = str(self.data_dir)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
            try:
                cmdline = " ".join(proc.info["cmdline"] or [])
                environ = proc.info["environ"] or {}
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if marker in cmdline or marker in environ.get("DATABASE_URL", ""):
                found.append(f"{proc.info['pid']}: {cmdline}")
        return found


@pytest.fixture
def dev_run(tmp_path: Path) -> Iterator[DevRun]:
    run = DevRun(tmp_path / "relance-data")
    yield run
    if run.process.poll() is None:
        run.stop()


def eventually(read: Any, accept: Any, within: float = 60.0) -> Any:
    """``read()`` until ``accept`` takes its value or ``within`` seconds pass; the last value."""
    deadline = time.monotonic() + within
    while True:
        value = read()
        if accept(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


class Organization:
    """A new organization on a running system, seen through invoice-api as a client sees it."""

    def __init__(self, client: httpx.Client, run: DevRun) -> None:
        self.client = client
        self.api = f"http://127.0.0.1:{run.port_base}"
        created = client.post(
            f"{self.api}/v1/organizations",
            json={"name": "Atelier Dupont"},
            headers={"X-Admin-Token": DEV_ADMIN_TOKEN},
        ).json()
        self.auth = {"Authorization": f"Bearer {created['api_key']}"}

    def sent_invoice(self, number: str, **fields: Any) -> dict[str, Any]:
        """A customer's invoice of 1,200 EUR, due in a year, sent now."""
        answer = self.client.post(
            f"{self.api}/v1/customers",
            json={"name": "Boulangerie Martin", "email": "compta@martin.example"},
            headers=self.auth,
        )
        assert answer.status_code == 201, answer.text
        customer = answer.json()
        today = time.strftime("%Y-%m-%d")
        answer = self.client.post(
            f"{self.api}/v1/invoices",
            json={
                "customer_id": customer["id"],
                "number": number,
                "issue_date": today,
                "due_date": f"{int(today[:4]) + 1}{today[4:]}",
                "currency": "EUR",
                "total": "1200.00",
                **fields,
            },
            headers=self.auth,
        )
        assert answer.status_code == 201, answer.text
        invoice = answer.json()
        sent = self.client.post(f"{self.api}/v1/invoices/{invoice['id']}/send", headers=self.auth)
        assert sent.is_success, sent.text
        return dict(invoice)
