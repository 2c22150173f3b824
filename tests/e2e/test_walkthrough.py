"""The README's "Your first ten minutes" works as written: its shell blocks, run in order
by bash against a system started the way `make dev` starts it, create an organization, a
customer and an invoice, send it, find the issuance email among the caught mails, record
the payment and show the invoice paid. A command of the walkthrough that breaks fails here."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from relance.devstack.supervisor import DEV_ADMIN_TOKEN

from .conftest import DevRun

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Your first ten minutes"


def walkthrough_blocks(readme: str) -> list[str]:
    """The ```sh blocks of the walkthrough section, in order."""
    assert SECTION in readme, f"README.md has no {SECTION!r} section"
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)


def test_the_walkthrough_blocks_are_found_in_order():
    readme = "intro\n## Your first ten minutes\n```sh\necho one\n```\ntext\n```sh\necho two\n```\n"
    readme += "## Next\n```sh\necho not this\n```\n"
    assert walkthrough_blocks(readme) == ["echo one\n", "echo two\n"]


def test_the_readme_walkthrough_takes_an_invoice_from_creation_to_paid(
    dev_run: DevRun, tmp_path: Path
):
    blocks = walkthrough_blocks(README.read_text())
    assert len(blocks) >= 5, blocks
    number = re.search(r'"number": "([^"]+)"', "".join(blocks))
    assert number is not None, "the walkthrough creates no invoice"
    mails = dev_run.data_dir / "mail"
    dev_run.wait_ready()

    shell = subprocess.run(
        ["bash", "-e", "-u", "-o", "pipefail", "-c", "\n".join(blocks)],
        cwd=tmp_path,
        env={
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            "HOME": str(tmp_path),
            "API": f"http://127.0.0.1:{dev_run.port_base}",
            "MAILS": str(mails),
            "ADMIN_TOKEN": DEV_ADMIN_TOKEN,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0, f"stdout:\n{shell.stdout}\nstderr:\n{shell.stderr}"
    shown = shell.stdout.splitlines()

    # the newcomer sees the draft, then the sent invoice, and finally the invoice paid
    assert "draft" in shown, shell.stdout
    assert "not_due" in shown, shell.stdout
    assert shown[-1] == "paid", shell.stdout

    # the issuance email is in the mail folder, the invoice number in its subject
    [mail] = [read_mail(path) for path in sorted(mails.glob("*.eml"))]
    assert mail["X-Reminder-Kind"] == "issuance"
    assert number.group(1) in mail["Subject"]
    assert f"Subject: {mail['Subject']}" in shown, shell.stdout

    # and the API, asked afresh with the key the walkthrough printed, says it is paid
    key = re.search(r"\brk_[\w-]+", shell.stdout)
    assert key is not None, shell.stdout
    invoice = httpx.get(
        f"http://127.0.0.1:{dev_run.port_base}/v1/invoices/{mail['X-Invoice-Id']}",
        headers={"Authorization": f"Bearer {key.group(0)}"},
        timeout=10,
    )
    assert invoice.status_code == 200, invoice.text
    assert invoice.json()["status"] == "paid"
    assert invoice.json()["number"] == number.group(1)


def read_mail(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message
