"""Child processes that die with the process that started them."""

from __future__ import annotations

import ctypes
import signal
import sys
from typing import Any

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux only: if the supervisor is killed outright (kill -9), its children get SIGTERM
    # instead of living on as orphans.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def child_process_options() -> dict[str, Any]:
    """Popen keyword arguments: own session (Ctrl-C reaches only the supervisor, which
    stops children in order) and, on Linux, death with the parent."""
    options: dict[str, Any] = {"start_new_session": True}
    if sys.platform.startswith("linux"):
        options["preexec_fn"] = _die_with_parent
    return options
