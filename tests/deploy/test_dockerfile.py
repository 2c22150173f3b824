"""deploy/Dockerfile, read as text (no Docker here): the final image is slim, pinned, runs as
a numeric non-root user, holds no build tools and checks /healthz on the service's port."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relance.common.service import ServiceSpec

BUILD_TOOLS = ("gcc", "build-essential", "apt-get", "make ", "git ")


def stages(dockerfile: str) -> list[list[str]]:
    """The instructions of each stage (continuation lines joined), ARGs before FROM first."""
    text = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    result: list[list[str]] = [[]]
    for line in lines:
        if line.upper().startswith("FROM ") and result[-1]:
            result.append([])
        result[-1].append(line)
    return result


def problems(dockerfile: str, specs: dict[str, ServiceSpec]) -> list[str]:
    found = []
    all_stages = stages(dockerfile)
    final = all_stages[-1]
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", dockerfile)
    if not base or not re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base.group(1)):
        found.append("the base is not a pinned python:3.11.N-slim")
    if not final[0].startswith("FROM ${PYTHON_IMAGE}"):
        found.append("the final stage is not on the slim base")
    users = [ln.split()[1] for ln in final if ln.startswith("USER ")]
    if not users or not re.fullmatch(r"[1-9]\d*(:\d+)?", users[-1]):
        found.append("the final stage does not run as a numeric non-root user")
    found += [
        f"the final stage has build tools: {ln}"
        for ln in final
        if ln.startswith("RUN") and any(tool in ln for tool in BUILD_TOOLS)
    ]
    if not any(ln.startswith("COPY --from=build") for ln in final):
        found.append("the final stage does not take the built environment from the build stage")
    if not any("-c constraints.txt" in ln for stage in all_stages[:-1] for ln in stage):
        found.append("dependencies are not installed with constraints.txt")
    health = " ".join(ln for ln in final if ln.startswith("HEALTHCHECK"))
    if "/healthz" not in health:
        found.append("no HEALTHCHECK on /healthz")
    found += [
        f"the HEALTHCHECK does not know {name}'s port {spec.settings_cls().port}"
        for name, spec in specs.items()
        if f"'{name}': {spec.settings_cls().port}" not in health
    ]
    return found


def context_problems(dockerfile: str, dockerignore: str) -> list[str]:
    """The build context is the repository: .dockerignore keeps out .venv and .relance (GBs,
    and the embedded PostgreSQL's files, which the daemon may not be allowed to read)."""
    rules = [ln.strip() for ln in dockerignore.splitlines() if ln.strip() and ln[0] != "#"]
    found = [] if rules[:1] == ["*"] else [".dockerignore does not start by excluding all"]
    allowed = [r[1:].rstrip("/") for r in rules if r.startswith("!")]
    for line in re.sub(r"\\\n\s*", " ", dockerfile).splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                source = source.replace("${SERVICE}", "scheduler")
                if not any(source == a or source.startswith(a + "/") for a in allowed):
                    found.append(f"COPY {source}: left out of the build context")
    return found


@pytest.fixture(scope="module")
def dockerfile(root: Path) -> str:
    return (root / "deploy/Dockerfile").read_text()


def test_the_image_is_slim_pinned_non_root_and_health_checked(
    dockerfile: str, specs: dict[str, ServiceSpec]
) -> None:
    assert problems(dockerfile, specs) == []


def test_the_build_context_holds_what_the_build_copies_and_no_more(
    dockerfile: str, root: Path
) -> None:
    dockerignore = (root / ".dockerignore").read_text()
    assert context_problems(dockerfile, dockerignore) == []
    broken = dockerignore.replace("!services/\n", "").replace("*\n", "", 1)
    assert context_problems(dockerfile, broken) == [
        ".dockerignore does not start by excluding all",
        "COPY services/scheduler: left out of the build context",
    ]


def test_the_checks_catch_a_bad_dockerfile(dockerfile: str, specs: dict[str, ServiceSpec]) -> None:
    broken = (
        dockerfile.replace("python:3.11.14-slim-bookworm", "python:3.11")
        .replace("USER 10001:10001", "USER root")
        .replace("/healthz", "/readyz")
        .replace("'scheduler': 8001", "'scheduler': 8000")
        .replace("ENV PATH", "RUN apt-get install -y gcc\nENV PATH")
    )
    assert problems(broken, specs) == [
        "the base is not a pinned python:3.11.N-slim",
        "the final stage does not run as a numeric non-root user",
        "the final stage has build tools: RUN apt-get install -y gcc",
        "no HEALTHCHECK on /healthz",
        "the HEALTHCHECK does not know scheduler's port 8001",
    ]
