"""How the benchmarks print their figures: one line per figure, with its target."""

from __future__ import annotations


def number(value: float, decimals: int = 0) -> str:
    """``14200.4`` → ``"14,200"``: readable at a glance."""
    return f"{value:,.{decimals}f}"


def verdict(met: bool) -> str:
    return "OK" if met else "SHORT"


def figure(name: str, measured: str, target: str, met: bool, detail: str = "") -> str:
    """``name: measured (detail) target ...: OK`` as printed for each figure."""
    middle = f" ({detail})" if detail else ""
    return f"{name}: {measured}{middle} target {target}: {verdict(met)}"


def say(message: str) -> None:
    print(f"  {message}", flush=True)
