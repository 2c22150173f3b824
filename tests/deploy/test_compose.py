"""docker-compose.yml, checked without Docker: what an operator would otherwise find out at
`make up` (or later). Each check returns the problems it finds, so that the tests at the end
can show, on a broken copy of the file, that it does catch them."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from relance.common import tracing
from relance.common.events import TOPICS
from relance.common.service import STOP_SECONDS, ServiceSpec
from relance.devstack.stack import TOPIC_PARTITIONS

Compose = dict[str, Any]

INFRA = {"postgres", "kafka", "mailpit"}
# the Compose specification's service attributes this file may use: a misspelt one
# (stop_grace_perod) would otherwise be ignored or refused only at `make up`
SERVICE_KEYS = {
    "build", "command", "container_name", "depends_on", "entrypoint", "environment",
    "env_file", "healthcheck", "image", "mem_limit", "ports", "restart",
    "stop_grace_period", "user", "volumes",
}  # fmt: skip
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval"}
ONE_SHOT_CONDITION = "service_completed_successfully"


@pytest.fixture(scope="module")
def compose(root: Path) -> Compose:
    loaded = yaml.safe_load((root / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def relance_services(compose: Compose) -> dict[str, dict[str, Any]]:
    """The services built from deploy/Dockerfile, by name: the four and their migrations."""
    return {
        name: service
        for name, service in compose["services"].items()
        if "SERVICE" in (service.get("build") or {}).get("args", {})
    }


def settings_fields(spec: ServiceSpec) -> dict[str, bool]:
    """Environment variable -> whether the settings class requires it."""
    return {
        name.upper(): field.is_required() for name, field in spec.settings_cls.model_fields.items()
    }


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(
        float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(duration))
    )


# -- the checks ------------------------------------------------------------------------


def missing_references(compose: Compose) -> list[str]:
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})
    problems = []
    for name, service in services.items():
        for dep, how in (service.get("depends_on") or {}).items():
            if dep not in services:
                problems.append(f"{name} depends on {dep}, which is not a service")
                continue
            condition = how.get("condition")
            if condition == "service_healthy" and "healthcheck" not in services[dep]:
                problems.append(f"{name} waits for {dep} to be healthy; it has no healthcheck")
            if condition == ONE_SHOT_CONDITION and not one_shot(services[dep]):
                problems.append(f"{name} waits for {dep} to complete; it never does")
        for mount in service.get("volumes") or []:
            source = str(mount).split(":")[0]
            if not source.startswith((".", "/")) and source not in volumes:
                problems.append(f"{name} mounts volume {source}, not declared under volumes")
    return problems


def unknown_keys(compose: Compose) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        problems += [f"{name}: unknown attribute {k}" for k in sorted(set(service) - SERVICE_KEYS)]
        extra = set(service.get("healthcheck") or {}) - HEALTHCHECK_KEYS
        problems += [f"{name}: unknown healthcheck attribute {k}" for k in sorted(extra)]
    return problems


def missing_healthchecks(compose: Compose) -> list[str]:
    return [
        f"{name} runs for good but has no healthcheck"
        for name, service in compose["services"].items()
        if not one_shot(service) and "healthcheck" not in service
    ]


def host_port_collisions(compose: Compose) -> list[str]:
    taken: dict[tuple[str, str], str] = {}
    problems = []
    for name, service in compose["services"].items():
        for port in service.get("ports") or []:
            parts = str(port).split("/")[0].split(":")
            if len(parts) < 2:
                continue  # a container port only: Docker picks a free host port
            host_ip, host_port = (parts[0], parts[1]) if len(parts) == 3 else ("", parts[0])
            for ip in {host_ip, ""} if host_ip else {""}:
                other = taken.get((ip, host_port))
                if other:
                    problems.append(f"{name} and {other} both publish host port {host_port}")
            taken[(host_ip, host_port)] = name
            taken.setdefault(("", host_port), name)
    return problems


def environment_problems(compose: Compose, specs: dict[str, ServiceSpec]) -> list[str]:
    """Every variable given to a service is one of its settings; every one it needs is given."""
    problems = []
    for name, service in relance_services(compose).items():
        spec = specs[service["build"]["args"]["SERVICE"]]
        fields = settings_fields(spec)
        env = service.get("environment") or {}
        for variable in env:
            if variable not in fields and variable not in tracing.VARIABLES:
                problems.append(f"{name}: {variable} is not a setting of {spec.name}")
        needed = {v for v, required in fields.items() if required} | {"DATABASE_URL"}
        if not one_shot(service):
            needed |= {"KAFKA_BOOTSTRAP_SERVERS", "PORT"}
            needed |= {"notifier": {"SMTP_HOST"}, "invoice-api": {"ADMIN_TOKEN"}}.get(
                spec.name, set()
            )
        for variable in sorted(needed - set(env)):
            problems.append(f"{name}: {variable} is not given (its default does not fit here)")
    return problems


def database_problems(compose: Compose, specs: dict[str, ServiceSpec], init: str) -> list[str]:
    """Each service's URL names its own role and database, created by the init script."""
    created = dict(re.findall(r"^create (\w+) \"\$(\w+)\"", init, re.MULTILINE))
    postgres_env = compose["services"]["postgres"]["environment"]
    problems = [
        f"postgres: the init script reads {var}, which the container is not given"
        for var in created.values()
        if var not in postgres_env
    ]
    for name, service in relance_services(compose).items():
        spec = specs[service["build"]["args"]["SERVICE"]]
        database = "relance_" + spec.package.split(".")[-1]
        url = str((service.get("environment") or {}).get("DATABASE_URL", ""))
        match = re.fullmatch(r"postgresql://(\w+):\$\{(\w+):-[^}]*\}@postgres:5432/(\w+)", url)
        if not match:
            problems.append(f"{name}: DATABASE_URL {url!r} is not role:password@postgres/db")
            continue
        role, password_var, db = match.groups()
        if db != database or role != database:
            problems.append(f"{name}: connects as {role} to {db}, expected {database} to both")
        if created.get(role) != password_var:
            problems.append(f"{name}: role {role} with ${password_var} is not what the init makes")
    return problems


def port_problems(compose: Compose, specs: dict[str, ServiceSpec]) -> list[str]:
    problems = []
    for name, service in relance_services(compose).items():
        if one_shot(service):
            continue
        port = str(service["environment"].get("PORT"))
        published = [str(p).split("/")[0].split(":")[-1] for p in service.get("ports") or []]
        if published and port not in published:
            problems.append(f"{name}: PORT is {port} but the container port published {published}")
    return problems


def topic_problems(compose: Compose, specs: dict[str, ServiceSpec]) -> list[str]:
    script = "\n".join(compose["services"]["kafka-topics"]["command"])
    match = re.search(r"for topic in ([\w\- ]+);", script)
    created = set(match.group(1).split()) if match else set()
    problems = [f"topic {t} is not created" for t in sorted(set(TOPICS) - created)]
    for spec in specs.values():
        problems += [
            f"{spec.name} reads {t}, which is not created"
            for t in spec.consumes
            if t not in created
        ]
    if "--partitions" not in script:
        problems.append("the topics are created without a partition count")
    return problems


def shutdown_problems(compose: Compose) -> list[str]:
    # requests, then the tasks, then the producer: each is given STOP_SECONDS
    needed = 3 * STOP_SECONDS
    return [
        f"{name}: stop_grace_period {service.get('stop_grace_period', '10s')} is under "
        f"{needed:.0f} s: Docker kills it mid-shutdown"
        for name, service in relance_services(compose).items()
        if not one_shot(service) and seconds(service.get("stop_grace_period", "10s")) < needed
    ]


def image_problems(compose: Compose) -> list[str]:
    problems = []
    for name, service in compose["services"].items():
        image = str(service.get("image", ""))
        if "build" in service:
            continue
        tag = image.rpartition(":")[2] if ":" in image else ""
        if not re.search(r"\d+\.\d+", tag):
            problems.append(f"{name}: image {image!r} is not pinned to a version")
    postgres = compose["services"]["postgres"]
    major = int(re.search(r":(\d+)", postgres["image"]).group(1))  # type: ignore[union-attr]
    mounts = [str(v).split(":")[1] for v in postgres.get("volumes") or []]
    data = "/var/lib/postgresql" if major >= 18 else "/var/lib/postgresql/data"
    if data not in mounts:
        problems.append(f"postgres {major}: its data volume must be mounted at {data}")
    return problems


# -- the file as it is -----------------------------------------------------------------


def test_names_every_service_and_dependency(
    compose: Compose, specs: dict[str, ServiceSpec]
) -> None:
    names = set(compose["services"])
    expected = INFRA | {"kafka-topics"} | set(specs) | {f"migrate-{s}" for s in specs}
    assert expected <= names, f"missing: {sorted(expected - names)}"
    assert missing_references(compose) == []
    for name in specs:
        deps = compose["services"][name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy"
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps[f"migrate-{name}"]["condition"] == ONE_SHOT_CONDITION
        assert deps["kafka-topics"]["condition"] == ONE_SHOT_CONDITION


def test_every_attribute_is_one_compose_knows(compose: Compose) -> None:
    assert unknown_keys(compose) == []


def test_partitions_default_as_make_dev(compose: Compose) -> None:
    partitions = compose["services"]["kafka-topics"]["environment"]["PARTITIONS"]
    assert partitions == f"${{KAFKA_TOPIC_PARTITIONS:-{TOPIC_PARTITIONS}}}"


def test_make_up_and_down_wrap_compose(root: Path) -> None:
    makefile = (root / "Makefile").read_text()
    assert re.search(r"^up: .*\n\tdocker compose up --build", makefile, re.MULTILINE)
    assert re.search(r"^down: .*\n\tdocker compose down", makefile, re.MULTILINE)


def test_every_long_running_service_has_a_healthcheck(compose: Compose) -> None:
    assert missing_healthchecks(compose) == []


def test_services_are_ready_only_when_readyz_says_so(compose: Compose) -> None:
    for name, service in relance_services(compose).items():
        if not one_shot(service):
            assert "/readyz" in " ".join(service["healthcheck"]["test"]), name


def test_host_ports_do_not_collide(compose: Compose) -> None:
    assert host_port_collisions(compose) == []


def test_environment_matches_the_settings_classes(
    compose: Compose, specs: dict[str, ServiceSpec]
) -> None:
    assert environment_problems(compose, specs) == []
    assert port_problems(compose, specs) == []


def test_each_service_uses_its_own_role_and_database(
    compose: Compose, specs: dict[str, ServiceSpec], root: Path
) -> None:
    init = (root / "deploy/postgres/create-databases.sh").read_text()
    assert database_problems(compose, specs, init) == []


def test_migrations_run_the_service_image_against_its_database(
    compose: Compose, specs: dict[str, ServiceSpec]
) -> None:
    for name in specs:
        migrate, service = compose["services"][f"migrate-{name}"], compose["services"][name]
        assert migrate["command"] == ["migrate"]
        assert migrate["image"] == service["image"]
        assert migrate["environment"]["DATABASE_URL"] == service["environment"]["DATABASE_URL"]


def test_topics_are_created_for_every_consumer(
    compose: Compose, specs: dict[str, ServiceSpec]
) -> None:
    assert topic_problems(compose, specs) == []


def test_stop_grace_covers_the_graceful_shutdown(compose: Compose) -> None:
    assert shutdown_problems(compose) == []


def test_images_are_pinned(compose: Compose) -> None:
    assert image_problems(compose) == []


# -- the checks catch what they are meant to ---------------------------------------------


def test_a_setting_renamed_in_code_but_not_in_compose_fails(
    compose: Compose, specs: dict[str, ServiceSpec]
) -> None:
    broken = copy.deepcopy(compose)
    env = broken["services"]["notifier"]["environment"]
    env["SMTP_SERVER"] = env.pop("SMTP_HOST")
    problems = environment_problems(broken, specs)
    assert "notifier: SMTP_SERVER is not a setting of notifier" in problems
    assert any("SMTP_HOST is not given" in p for p in problems)


def test_broken_copies_are_caught(compose: Compose, specs: dict[str, ServiceSpec]) -> None:
    broken = copy.deepcopy(compose)
    services = broken["services"]
    del services["mailpit"]["healthcheck"]
    services["scheduler"]["ports"] = ["127.0.0.1:8000:8001"]
    services["payment-matcher"]["depends_on"]["redis"] = {"condition": "service_started"}
    services["invoice-api"]["stop_grace_period"] = "10s"
    services["kafka"]["image"] = "apache/kafka:latest"
    services["notifier"]["stop_grace_perod"] = services["notifier"].pop("stop_grace_period")
    services["kafka-topics"]["command"] = [
        c.replace("payment-events", "") for c in services["kafka-topics"]["command"]
    ]
    assert missing_healthchecks(broken) == ["mailpit runs for good but has no healthcheck"]
    assert unknown_keys(broken) == ["notifier: unknown attribute stop_grace_perod"]
    assert any("host port 8000" in p for p in host_port_collisions(broken))
    assert any("redis" in p for p in missing_references(broken))
    assert any("mailpit to be healthy" in p for p in missing_references(broken))
    assert any(p.startswith("invoice-api: stop_grace_period") for p in shutdown_problems(broken))
    assert any(p.startswith("kafka: image") for p in image_problems(broken))
    assert "topic payment-events is not created" in topic_problems(broken, specs)
    services["notifier"]["environment"]["PORT"] = "9002"
    assert port_problems(broken, specs) == [
        "notifier: PORT is 9002 but the container port published ['8002']"
    ]


def test_a_service_pointed_at_another_database_is_caught(
    compose: Compose, specs: dict[str, ServiceSpec], root: Path
) -> None:
    init = (root / "deploy/postgres/create-databases.sh").read_text()
    broken = copy.deepcopy(compose)
    env = broken["services"]["scheduler"]["environment"]
    env["DATABASE_URL"] = env["DATABASE_URL"].replace(
        ":5432/relance_scheduler", ":5432/relance_notifier"
    )
    assert database_problems(broken, specs, init) == [
        "scheduler: connects as relance_scheduler to relance_notifier, expected "
        "relance_scheduler to both"
    ]
