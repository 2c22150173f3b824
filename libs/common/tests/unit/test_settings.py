"""Configuration from the environment: the shared base and each service's own defaults."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from relance.common.settings import ServiceSettings
from relance.invoice_api.settings import InvoiceApiSettings
from relance.notifier.settings import NotifierSettings
from relance.payment_matcher.settings import PaymentMatcherSettings
from relance.scheduler.settings import SchedulerSettings

SERVICE_PORTS = [
    (InvoiceApiSettings, 8000),
    (SchedulerSettings, 8001),
    (NotifierSettings, 8002),
    (PaymentMatcherSettings, 8003),
]
SERVICE_IDS = ["invoice-api", "scheduler", "notifier", "payment-matcher"]
SERVICE_CLASSES = [settings_class for settings_class, _ in SERVICE_PORTS]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets is in the environment, whatever the shell running pytest has."""
    for name in ServiceSettings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)


# --- DATABASE_URL --------------------------------------------------------------------------


def test_default_database_is_local_postgres_through_asyncpg() -> None:
    assert ServiceSettings().database_url == (
        "postgresql+asyncpg://postgres@127.0.0.1:5432/relance"
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (
            "postgresql://relance:secret@db.internal:5432/invoices",
            "postgresql+asyncpg://relance:secret@db.internal:5432/invoices",
        ),
        (
            "postgres://relance:secret@db.internal:5432/invoices",
            "postgresql+asyncpg://relance:secret@db.internal:5432/invoices",
        ),
        (
            "postgresql+asyncpg://relance@127.0.0.1:5433/scheduler",
            "postgresql+asyncpg://relance@127.0.0.1:5433/scheduler",
        ),
        (
            "postgres://u@h/db?ssl=require",
            "postgresql+asyncpg://u@h/db?ssl=require",
        ),
    ],
    ids=["postgresql", "postgres", "already-asyncpg", "with-query"],
)
def test_database_url_from_the_environment_is_normalized_to_asyncpg(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert ServiceSettings().database_url == expected


def test_database_url_given_directly_is_normalized_too() -> None:
    settings = ServiceSettings(database_url="postgres://u:p@h:5432/db")
    assert settings.database_url == "postgresql+asyncpg://u:p@h:5432/db"


@pytest.mark.parametrize(
    "url",
    [
        "mysql://relance:secret@db:3306/relance",
        "sqlite:///relance.db",
        "sqlite+aiosqlite:///:memory:",
        "http://db.internal:5432/relance",
        "db.internal:5432/relance",
        "",
    ],
)
def test_non_postgres_database_url_is_refused(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ValidationError, match=r"DATABASE_URL must be a postgresql:// URL"):
        ServiceSettings()


# --- other values from the environment -----------------------------------------------------


def test_defaults_without_any_environment_variable() -> None:
    settings = ServiceSettings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.smtp_host == "127.0.0.1"
    assert settings.smtp_port == 1025
    assert settings.smtp_username is None
    assert settings.smtp_password is None
    assert settings.smtp_starttls is False
    assert settings.admin_token is None
    assert settings.host == "0.0.0.0"
    assert settings.port == 8000
    assert settings.log_level == "INFO"
    assert settings.outbox_poll_seconds == 1.0
    assert settings.outbox_batch_size == 2000


def test_values_are_read_from_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092,kafka-2:9092")
    monkeypatch.setenv("SMTP_HOST", "smtp.example.org")
    monkeypatch.setenv("SMTP_PORT", "587")
    monkeypatch.setenv("SMTP_USERNAME", "relance")
    monkeypatch.setenv("SMTP_STARTTLS", "true")
    monkeypatch.setenv("HOST", "127.0.0.1")
    monkeypatch.setenv("PORT", "9100")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("OUTBOX_POLL_SECONDS", "0.25")
    monkeypatch.setenv("OUTBOX_BATCH_SIZE", "500")
    settings = ServiceSettings()
    assert settings.kafka_bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert settings.smtp_host == "smtp.example.org"
    assert settings.smtp_port == 587
    assert settings.smtp_username == "relance"
    assert settings.smtp_starttls is True
    assert settings.host == "127.0.0.1"
    assert settings.port == 9100
    assert settings.log_level == "DEBUG"
    assert settings.outbox_poll_seconds == 0.25
    assert settings.outbox_batch_size == 500


def test_secrets_from_the_environment_are_hidden_when_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("ADMIN_TOKEN", "let-me-in")
    settings = ServiceSettings()
    assert isinstance(settings.smtp_password, SecretStr)
    assert isinstance(settings.admin_token, SecretStr)
    assert settings.smtp_password.get_secret_value() == "hunter2"
    assert settings.admin_token.get_secret_value() == "let-me-in"
    assert "hunter2" not in repr(settings)
    assert "let-me-in" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SMTP_PORT", "0"),
        ("SMTP_PORT", "65536"),
        ("SMTP_PORT", "twenty-five"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("OUTBOX_POLL_SECONDS", "0"),
        ("OUTBOX_POLL_SECONDS", "-1"),
        ("OUTBOX_BATCH_SIZE", "0"),
        ("SMTP_STARTTLS", "maybe"),
    ],
)
def test_out_of_range_or_malformed_value_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=variable.lower()):
        ServiceSettings()


def test_unrelated_environment_variables_and_arguments_are_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    settings = ServiceSettings(not_a_setting="y")
    assert not hasattr(settings, "not_a_setting")
    assert not hasattr(settings, "something_else")


def test_settings_cannot_be_changed_once_read() -> None:
    settings = ServiceSettings()
    with pytest.raises(ValidationError, match="frozen"):
        settings.port = 9999  # type: ignore[misc]
    assert settings.port == 8000


# --- each service --------------------------------------------------------------------------


@pytest.mark.parametrize(("settings_class", "port"), SERVICE_PORTS, ids=SERVICE_IDS)
def test_each_service_has_its_own_default_port(
    settings_class: type[ServiceSettings], port: int
) -> None:
    assert settings_class().port == port


def test_the_four_services_default_to_distinct_ports() -> None:
    ports = [settings_class().port for settings_class, _ in SERVICE_PORTS]
    assert sorted(ports) == [8000, 8001, 8002, 8003]


@pytest.mark.parametrize(("settings_class", "port"), SERVICE_PORTS, ids=SERVICE_IDS)
def test_port_from_the_environment_overrides_the_service_default(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[ServiceSettings], port: int
) -> None:
    monkeypatch.setenv("PORT", "9200")
    assert port != 9200
    assert settings_class().port == 9200


@pytest.mark.parametrize(("settings_class", "port"), SERVICE_PORTS, ids=SERVICE_IDS)
def test_service_settings_normalize_the_database_url(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[ServiceSettings], port: int
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://svc@db:5432/svc")
    settings = settings_class()
    assert settings.database_url == "postgresql+asyncpg://svc@db:5432/svc"
    assert settings.port == port


@pytest.mark.parametrize("settings_class", SERVICE_CLASSES, ids=SERVICE_IDS)
def test_service_settings_refuse_a_non_postgres_database_url(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[ServiceSettings]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://svc@db/svc")
    with pytest.raises(ValidationError, match="postgresql://"):
        settings_class()


@pytest.mark.parametrize("settings_class", SERVICE_CLASSES, ids=SERVICE_IDS)
def test_service_settings_refuse_a_port_out_of_range_like_the_base(
    monkeypatch: pytest.MonkeyPatch, settings_class: type[ServiceSettings]
) -> None:
    for value in ("0", "70000"):
        monkeypatch.setenv("PORT", value)
        with pytest.raises(ValidationError, match="port"):
            ServiceSettings()
        with pytest.raises(ValidationError, match="port"):
            settings_class()
