"""Fixtures on the real embedded PostgreSQL, broker and SMTP catcher, for every suite.

Each test run keeps its temporary files (the embedded PostgreSQL's data among them) in a
folder of its own, removed when the run ends. pytest's default, numbered folders under
``/tmp/pytest-of-<user>/``, are pruned to the three newest by every run that starts: a
fourth run started on the same machine while a long one is going (a developer's, another
checkout's) deletes the long run's database files under its server, and every test after
that fails with "connection refused".
"""

from __future__ import annotations

import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["relance.devstack.testing"]

_OWN_BASETEMP = "_relance_own_basetemp"

# The machines the suite runs on are shared: an example's time says nothing about the code,
# so no property test fails on a deadline or for being slow to generate data.
settings.register_profile("relance", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("relance")


def pytest_configure(config: pytest.Config) -> None:
    if config.option.basetemp is None:
        config.option.basetemp = tempfile.mkdtemp(prefix="relance-pytest-")
        setattr(config, _OWN_BASETEMP, config.option.basetemp)


def pytest_unconfigure(config: pytest.Config) -> None:
    own = getattr(config, _OWN_BASETEMP, None)
    if own is not None:
        shutil.rmtree(own, ignore_errors=True)
