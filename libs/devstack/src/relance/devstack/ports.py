"""Finding and checking TCP ports on this machine."""

from __future__ import annotations

import socket
import time


class PortTaken(RuntimeError):
    def __init__(self, what: str, port: int, hint: str) -> None:
        super().__init__(f"port {port} ({what}) is already in use; {hint}")
        self.port = port


def free_port() -> int:
    """A port nobody listens on right now (for tests, which must not collide with `make dev`)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def require_free(port: int, what: str, hint: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise PortTaken(what, port, hint) from exc


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing answered on {host}:{port} after {timeout:.0f} s"
                ) from None
            time.sleep(0.05)
