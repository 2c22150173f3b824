"""``make dev`` start time, and the idle resident memory of each of the four services.

Runs ``relance-dev`` (what ``make dev`` runs) on a temporary data folder and free ports
(never 8000-8003, 9092 or 1025, which a developer's ``make dev`` may hold). A first start
initialises the data folder (PostgreSQL cluster, databases, migrations) and is stopped
with SIGTERM, so that the measured start is the everyday one, "after the first install".
The second start is timed from the process's launch to the "Relance is ready" line on its
standard output (the supervisor's own figure, which leaves out the interpreter's start,
is printed beside it).

While that stack runs, the four ``python -m relance.<service> serve`` children are found
with psutil, left idle for 5 seconds, and their resident set size (RSS) is read; the
unique set size (USS, memory no other process shares) is printed beside it. Then SIGTERM
stops ``relance-dev``, which stops the services and the stack; anything it leaves behind is
ended by its process id. Figures are printed, never asserted.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import psutil

from benchmarks.report import figure, number, say
from benchmarks.stack import end_processes, postgres_leftovers
from relance.devstack.ports import free_port
from relance.devstack.stack import SERVICES

READY_MARK = "Relance is ready"
TARGET_START_SECONDS = 15.0
TARGET_RSS_MB = 150.0
IDLE_SECONDS = 5.0
READY_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 60.0
RESERVED_PORTS = frozenset({8000, 8001, 8002, 8003, 9092, 1025})  # a developer's `make dev`
# what replaces an embedded part: left out so that the benchmark measures the embedded stack
REPLACING_VARIABLES = ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS", "SMTP_HOST", "SMTP_PORT")
MB = 1024 * 1024


@dataclass(frozen=True)
class Ports:
    base: int
    kafka: int
    smtp: int


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports() -> Ports:
    """Free ports: a run of four for the services, one for the broker, one for SMTP."""
    taken: set[int] = set(RESERVED_PORTS)

    def one() -> int:
        for _ in range(100):
            port = free_port()
            if port not in taken:
                taken.add(port)
                return port
        raise RuntimeError("no free port found")

    for _ in range(100):
        base = free_port()
        run = range(base, base + len(SERVICES))
        if run[-1] < 65536 and not taken & set(run) and all(_is_free(p) for p in run):
            taken.update(run)
            return Ports(base, one(), one())
    raise RuntimeError(f"no {len(SERVICES)} consecutive free ports found")


@dataclass
class DevProcess:
    """One ``relance-dev`` run: its process, and its output lines with when each came."""

    process: subprocess.Popen[str]
    launched: float
    lines: queue.Queue[tuple[float, str | None]] = field(default_factory=queue.Queue)
    output: list[str] = field(default_factory=list)
    children: list[psutil.Process] = field(default_factory=list)

    @classmethod
    def launch(cls, data_dir: Path, ports: Ports) -> DevProcess:
        command = [
            str(Path(sys.executable).with_name("relance-dev")),
            "--data-dir",
            str(data_dir),
            "--port-base",
            str(ports.base),
            "--kafka-port",
            str(ports.kafka),
            "--smtp-port",
            str(ports.smtp),
        ]
        environ = {k: v for k, v in os.environ.items() if k not in REPLACING_VARIABLES}
        environ["PYTHONUNBUFFERED"] = "1"
        launched = time.monotonic()
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=environ,
        )
        run = cls(process, launched)
        assert process.stdout is not None
        threading.Thread(target=run._read, args=(process.stdout,), daemon=True).start()
        return run

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put((time.monotonic(), line.rstrip("\n")))
        self.lines.put((time.monotonic(), None))

    def wait_ready(self) -> tuple[float, float | None]:
        """Seconds from launch to the ready line, and the supervisor's own figure."""
        deadline = self.launched + READY_TIMEOUT_SECONDS
        while True:
            try:
                when, line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(
                    f"no '{READY_MARK}' line after {READY_TIMEOUT_SECONDS:.0f} s"
                ) from None
            if line is None:
                raise RuntimeError(f"relance-dev exited with code {self.process.wait()}")
            self.output.append(line)
            if READY_MARK in line:
                found = re.search(r"\(([\d.]+) s\)", line)
                self.children = psutil.Process(self.process.pid).children(recursive=True)
                return when - self.launched, float(found.group(1)) if found else None

    def stop(self) -> float:
        """SIGTERM, wait for the exit; end by id whatever it left running. Seconds taken."""
        started = time.monotonic()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                say(f"relance-dev did not stop in {STOP_TIMEOUT_SECONDS:.0f} s: killing it")
                self.process.kill()
                self.process.wait()
        seconds = time.monotonic() - started
        self._end_leftovers()
        self._drain()
        return seconds

    def _end_leftovers(self) -> None:
        alive = [child for child in self.children if child.is_running()]
        for child in alive:
            say(f"left running after relance-dev exited, ending it: {child.pid} {child.name()}")
            child.terminate()
        _gone, still = psutil.wait_procs(alive, timeout=10)
        for child in still:
            child.kill()

    def _drain(self) -> None:
        while True:
            try:
                _when, line = self.lines.get(timeout=5)
            except queue.Empty:
                return
            if line is None:
                return
            self.output.append(line)

    def tail(self, count: int = 30) -> str:
        self._drain()
        return "\n".join(self.output[-count:])


@dataclass(frozen=True)
class ServiceMemory:
    name: str
    pid: int
    rss: int
    uss: int


def service_processes(run: DevProcess) -> dict[str, psutil.Process]:
    """The ``python -m relance.<service> serve`` children of ``relance-dev``, by name."""
    found: dict[str, psutil.Process] = {}
    for child in run.children:
        try:
            command = child.cmdline()
        except psutil.Error:
            continue
        for service in SERVICES:
            if command[-3:] == ["-m", service.package, "serve"]:
                found[service.name] = child
    return found


def measure_memory(run: DevProcess) -> list[ServiceMemory]:
    processes = service_processes(run)
    missing = [s.name for s in SERVICES if s.name not in processes]
    if missing:
        raise RuntimeError(f"service processes not found: {', '.join(missing)}")
    time.sleep(IDLE_SECONDS)
    memory = []
    for service in SERVICES:
        process = processes[service.name]
        info = process.memory_full_info()
        memory.append(ServiceMemory(service.name, process.pid, info.rss, info.uss))
    return memory


def tear_down(current: DevProcess | None, data_dir: Path, workdir: Path) -> bool:
    """Stop the stack if it still runs, end a PostgreSQL it left behind, delete the run's
    folder; False when something had been left running."""
    if current is not None:
        current.stop()
    leftovers = postgres_leftovers(data_dir)
    if leftovers:
        end_processes(leftovers)
    shutil.rmtree(workdir, ignore_errors=True)
    return not leftovers


def run() -> bool:
    """Run the benchmark and print its figures; False if the stack did not start or stop."""
    print(f"== make dev: start time and idle memory ({os.cpu_count()} CPUs) ==", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="relance-bench-dev-"))
    data_dir = workdir / "data"
    ok = True
    current: DevProcess | None = None
    try:
        ports = pick_ports()
        say(
            f"data in {data_dir}; services on {ports.base}-{ports.base + len(SERVICES) - 1}, "
            f"broker on {ports.kafka}, SMTP on {ports.smtp}"
        )
        current = DevProcess.launch(data_dir, ports)
        first, _ = current.wait_ready()
        stop_first = current.stop()
        current = None
        say(
            f"first start (data folder initialised, not the target): ready in {first:.1f} s; "
            f"SIGTERM stopped it in {stop_first:.1f} s"
        )

        current = DevProcess.launch(data_dir, ports)
        seconds, own = current.wait_ready()
        say(
            f"second start: ready in {seconds:.1f} s from launch "
            f"(supervisor's own figure: {own if own is not None else '?'} s)"
        )
        memory = measure_memory(current)
        stop_second = current.stop()
        current = None
        say(f"SIGTERM stopped the stack in {stop_second:.1f} s")

        print(
            figure(
                "make dev start",
                f"{seconds:.1f} s to '{READY_MARK}'",
                f"< {TARGET_START_SECONDS:.0f} s",
                seconds < TARGET_START_SECONDS,
                f"second start, data folder already initialised; first start {first:.1f} s",
            ),
            flush=True,
        )
        for item in memory:
            rss_mb = item.rss / MB
            print(
                figure(
                    f"idle RSS {item.name}",
                    f"{rss_mb:.0f} MB",
                    f"< {TARGET_RSS_MB:.0f} MB",
                    rss_mb < TARGET_RSS_MB,
                    f"USS {item.uss / MB:.0f} MB, {IDLE_SECONDS:.0f} s after ready, pid {item.pid}",
                ),
                flush=True,
            )
        total = sum(item.rss for item in memory) / MB
        say(f"the four services together: {number(total)} MB RSS")
    except (RuntimeError, TimeoutError) as failure:
        ok = False
        print(f"make dev: could not measure: {failure}", flush=True)
        if current is not None:
            print(current.tail(), flush=True)
    finally:
        ok = tear_down(current, data_dir, workdir) and ok
    return ok
