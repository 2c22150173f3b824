"""What more than one benchmark starts: a service in a child process, an SMTP catcher in
another, and the clean-up of PostgreSQL servers left running on a data folder.

Each part runs in its own process, so that it does not share an interpreter (and its GIL)
with the load or the checks of the benchmark that measures it.

``python -m benchmarks.stack catcher FOLDER PORT`` runs the development stack's SMTP catcher
(``relance.devstack.mailcatcher``, aiosmtpd) until SIGTERM: every mail it accepts becomes a
``<time_ns>-<sequence>-<id>.eml`` file in FOLDER, the time being when its data arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx
import psutil

from benchmarks.report import say
from relance.common.settings import ServiceSettings
from relance.devstack.mailcatcher import MailCatcher
from relance.devstack.ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
READY_TIMEOUT_SECONDS = 60.0
# ``python -c PROFILED <package> <file>``: the service's ``serve`` under cProfile. uvicorn
# ends a SIGTERM'd server by raising the signal again once it has shut down, with the
# handler found at start restored: this one writes the statistics, then exits.
PROFILED = """
import cProfile, runpy, signal, sys
package, path = sys.argv[1], sys.argv[2]
sys.argv = [package, "serve"]
profiler = cProfile.Profile()
def dump(*_):
    profiler.disable()
    profiler.dump_stats(path)
    raise SystemExit(0)
signal.signal(signal.SIGTERM, dump)
profiler.enable()
runpy.run_module(package, run_name="__main__", alter_sys=True)
dump()
"""


def process_cpu(process: psutil.Process) -> float:
    """User and system CPU seconds of a process so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def stop_child(process: subprocess.Popen[bytes], log: IO[bytes]) -> None:
    """Stop a child server (SIGTERM, then SIGKILL after 20 s) and close its log."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    log.close()


async def wait_for_answer(
    process: subprocess.Popen[bytes], url: str, name: str, log_path: Path
) -> None:
    """Until ``url`` answers 200; RuntimeError if the process exits or it takes too long."""
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{name} did not answer {url} in time; see {log_path}")


class ServiceProcess:
    """``python -m <package> serve`` (what ``relance-<service> serve`` runs) on a free port.

    The settings come from ``environ`` only: every variable of ``settings_cls`` that this
    process's environment holds is left out, so that a developer's shell cannot change what
    is measured.
    """

    def __init__(
        self,
        package: str,
        settings_cls: type[ServiceSettings],
        environ: Mapping[str, str],
        log_path: Path,
        *,
        profile: Path | None = None,
    ) -> None:
        """``profile``: run it under cProfile, which writes its statistics there when the
        process stops (startup included)."""
        self.package = package
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        read = {name.upper() for name in settings_cls.model_fields}
        child = {k: v for k, v in os.environ.items() if k.upper() not in read}
        child.update(environ)
        child.update(HOST="127.0.0.1", PORT=str(self.port))
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            (
                [sys.executable, "-c", PROFILED, package, str(profile)]
                if profile
                else [sys.executable, "-m", package, "serve"]
            ),
            cwd=ROOT,
            env=child,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.psutil = psutil.Process(self.process.pid)

    async def wait_started(self, path: str = "/healthz") -> None:
        """Until ``path`` answers 200: ``/healthz`` by default (``/readyz`` also needs a
        broker, which some benchmarks leave out)."""
        await wait_for_answer(self.process, self.base_url + path, self.package, self.log_path)

    def cpu_seconds(self) -> float:
        return process_cpu(self.psutil)

    def stop(self) -> None:
        stop_child(self.process, self._log)


class CatcherProcess:
    """The development stack's SMTP catcher in a child process, on a free port."""

    def __init__(self, folder: Path, log_path: Path) -> None:
        self.folder = folder
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.stack", "catcher", str(folder), str(self.port)],
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.psutil = psutil.Process(self.process.pid)
        try:
            wait_for_port(self.port, timeout=30)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"the SMTP catcher did not start; see {log_path}") from None

    def cpu_seconds(self) -> float:
        return process_cpu(self.psutil)

    def count(self) -> int:
        return sum(1 for _ in self.folder.glob("*.eml"))

    def stop(self) -> None:
        stop_child(self.process, self._log)


def caught_headers(
    paths: Iterable[Path], names: Sequence[str]
) -> list[tuple[float, dict[str, str]]]:
    """For each mail the catcher wrote at ``paths``: when it arrived (seconds since the
    epoch, from its file name) and the headers of ``names`` it has."""
    parser = email.parser.BytesHeaderParser(policy=email.policy.compat32)
    found = []
    for path in paths:
        headers = parser.parsebytes(path.read_bytes())
        arrived = int(path.name.split("-", 1)[0]) / 1e9
        found.append((arrived, {n: str(headers[n]) for n in names if headers[n] is not None}))
    return found


def message_ids(folder: Path) -> Counter[str]:
    """How many times each Message-ID arrived at the catcher of ``folder``."""
    caught = caught_headers(folder.glob("*.eml"), ["Message-ID"])
    return Counter(headers.get("Message-ID", "") for _, headers in caught)


def postgres_leftovers(data_dir: Path) -> list[psutil.Process]:
    """PostgreSQL servers on a data folder (they run detached, as another user)."""
    mine = str(data_dir)
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "-D" in command and any(part.startswith(mine) for part in command):
            found.append(process)
    return found


def end_processes(processes: list[psutil.Process]) -> None:
    """SIGTERM each of ``processes`` (by id), then SIGKILL what is still there 15 s later."""
    for process in processes:
        say(f"still running, ending it: process {process.pid}")
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _gone, still = psutil.wait_procs(processes, timeout=15)
    for process in still:
        process.kill()


def _catch(folder: Path, port: int) -> None:
    catcher = MailCatcher(folder, port)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    catcher.start()
    try:
        stop.wait()
    finally:
        catcher.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["catcher"] and len(sys.argv) == 4:
        _catch(Path(sys.argv[2]), int(sys.argv[3]))
    else:
        raise SystemExit("usage: python -m benchmarks.stack catcher FOLDER PORT")
