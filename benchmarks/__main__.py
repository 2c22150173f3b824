"""``make bench``: run the benchmarks and print their figures (see BENCHMARKS.md).

Each figure is printed on one line with its target and ``OK`` or ``SHORT``. A figure that
falls short does not fail the run (timings on a shared machine are noisy); the exit code
is 1 only when something is wrong rather than slow: events lost or duplicated by the relay,
or the development stack not starting or not stopping cleanly.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Sequence

from benchmarks import dev_stack, outbox_relay

BENCHMARKS = ("relay", "startup")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure Relance: outbox relay throughput against a bare aiokafka "
        "producer (relay), and `make dev` start time with each service's idle memory "
        "(startup). Prints figures; never asserts timings.",
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
        help="rounds of the relay benchmark, each on a new database and broker; "
        "the median is reported (default: 1)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a cProfile of the relay's first round (which slows that round down)",
    )
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


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
    print(f"benchmarks done in {time.monotonic() - started:.0f} s", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
