"""`make dev` as a new user runs it: the supervisor starts the embedded stack and the four
services, each answers its health, readiness and metrics endpoints, and SIGTERM stops
everything, leaving no process behind and the data in place for the next start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from relance.devstack.ports import free_port
from relance.devstack.stack import SERVICES

pytestmark = pytest.mark.e2e
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
    def __init__(self, data_dir: Path) -> None:
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
            env=environment(),
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


def test_make_dev_starts_four_ready_services_and_stops_them_cleanly(dev_run: DevRun):
    dev_run.wait_ready()
    summary = "".join(dev_run.output)

    with httpx.Client(timeout=5) as client:
        for index, service in enumerate(SERVICES):
            url = f"http://127.0.0.1:{dev_run.port_base + index}"
            assert url in summary, f"{service.name}'s address is printed"
            assert client.get(f"{url}/healthz").json() == {"status": "ok"}
            ready = client.get(f"{url}/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"] == {"database": "ok", "broker": "ok"}
            metrics = client.get(f"{url}/metrics")
            assert "relance_http_requests_total" in metrics.text
            assert (
                client.get(f"{url}/openapi.json").json()["info"]["title"]
                == f"Relance {service.name}"
            )
    assert str(dev_run.data_dir / "mail") in summary, "where the caught mails are is printed"

    assert dev_run.stop() == 0, "".join(dev_run.output)
    assert dev_run.leftovers() == []
    assert (dev_run.data_dir / "postgres" / "PG_VERSION").exists(), "data is kept for next time"
    for service in SERVICES:
        log = (dev_run.data_dir / "logs" / f"{service.name}.log").read_text()
        assert '"event": "service stopped"' in log, f"{service.name} shut down gracefully"


def test_make_dev_names_a_port_already_taken_instead_of_a_traceback(tmp_path: Path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        result = subprocess.run(
            [
                *SUPERVISOR,
                "--data-dir",
                str(tmp_path / "d"),
                "--port-base",
                str(free_port_run(len(SERVICES))),
                "--kafka-port",
                str(taken),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=environment(),
        )
    assert result.returncode == 2
    assert f"port {taken} (Kafka broker) is already in use" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
