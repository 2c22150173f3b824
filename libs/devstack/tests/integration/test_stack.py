"""The embedded stack gives way to real parts named in the environment, and its SMTP
catcher keeps every mail as a readable .eml file."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from pathlib import Path

import asyncpg

from relance.devstack.broker import EmbeddedBroker
from relance.devstack.ports import free_port
from relance.devstack.stack import SERVICES, Stack


def test_real_parts_from_the_environment_replace_the_embedded_ones(postgres, tmp_path: Path):
    real_broker = EmbeddedBroker(free_port(), tmp_path / "real-broker.log")
    try:
        stack = Stack(
            data_dir=tmp_path / "data",
            kafka_port=free_port(),
            smtp_port=free_port(),
            environ={
                "DATABASE_URL": postgres.dsn("postgres"),
                "KAFKA_BOOTSTRAP_SERVERS": real_broker.bootstrap_servers,
                "SMTP_HOST": "mail.example.test",
                "SMTP_PORT": "2525",
            },
        )
        stack.start()
        try:
            assert stack.postgres is None
            assert stack.broker is None
            assert stack.mail is None
            assert stack.bootstrap_servers == real_broker.bootstrap_servers
            assert (stack.smtp_host, stack.smtp_port_in_use) == ("mail.example.test", 2525)
            for service in SERVICES:
                assert f"/{service.database}?" in stack.database_urls[service.name]
            assert set(asyncio.run(database_names(postgres.dsn()))) >= {
                s.database for s in SERVICES
            }
        finally:
            stack.stop()
    finally:
        real_broker.stop()
    assert not (tmp_path / "data" / "postgres").exists(), "no embedded cluster was made"


async def database_names(dsn: str) -> list[str]:
    connection = await asyncpg.connect(dsn)
    try:
        return [row[0] for row in await connection.fetch("SELECT datname FROM pg_database")]
    finally:
        await connection.close()


def test_the_catcher_keeps_each_mail_as_an_eml_file(mail_catcher):
    message = EmailMessage()
    message["From"] = "billing@acme.example"
    message["To"] = "customer@example.org"
    message["Subject"] = "Facture FA-2026-0012"
    message["X-Invoice-Id"] = "0b7c1e9e-0000-4000-8000-000000000012"
    message.set_content("Bonjour,\nvoici votre facture.\n")
    with smtplib.SMTP(mail_catcher.host, mail_catcher.port) as client:
        client.send_message(message)

    files = list(mail_catcher.folder.glob("*.eml"))
    assert len(files) == 1
    (caught,) = mail_catcher.messages()
    assert caught["Subject"] == "Facture FA-2026-0012"
    assert caught["X-Invoice-Id"] == "0b7c1e9e-0000-4000-8000-000000000012"
    assert caught["X-Catcher-Rcpt-To"] == "customer@example.org"
    assert "voici votre facture" in caught.get_content()
