"""`make dev` as a new user runs it: the supervisor starts the embedded stack and the four
services, each answers its health, readiness and metrics endpoints, and SIGTERM stops
everything, leaving no process behind and the data in place for the next start."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from relance.devstack.stack import SERVICES

from .conftest import SUPERVISOR, DevRun, environment, free_port_run

pytestmark = pytest.mark.e2e


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
            assert ready.json()["checks"] == {"database": "ok", "broker": "ok", "consumer": "ok"}
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
