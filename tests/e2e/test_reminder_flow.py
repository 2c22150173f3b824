"""An invoice sent through invoice-api is planned by the scheduler, its issuance email is
sent by the notifier and reaches the SMTP catcher, and all of it shows on the invoice, as
does a payment announced for a date, which moves the next step: the services talk through
the broker as they do under `make dev`."""

from __future__ import annotations

import email
import email.policy
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from relance.scheduler.plan import ReminderRules, schedule_hold_ends

from .conftest import DevRun, Organization, eventually

PARIS = ZoneInfo("Europe/Paris")

pytestmark = pytest.mark.e2e


def test_a_sent_invoice_is_planned_emailed_and_shown(dev_run: DevRun):
    dev_run.wait_ready()
    api = f"http://127.0.0.1:{dev_run.port_base}"
    scheduler = f"http://127.0.0.1:{dev_run.port_base + 1}"
    with httpx.Client(timeout=10) as client:
        org = Organization(client, dev_run)
        auth = org.auth
        invoice = org.sent_invoice("FA-E2E-1")

        # the scheduler learnt the organization's key and planned the invoice
        plan = eventually(
            lambda: client.get(f"{scheduler}/v1/invoices/{invoice['id']}/plan", headers=auth),
            lambda answer: answer.status_code == 200,
        )
        assert plan.status_code == 200, plan.text
        kinds = [step["kind"] for step in plan.json()["items"]]
        assert kinds[:3] == ["issuance", "pre_due", "due"]

        # invoice-api shows the plan from reminder.planned
        reminders = eventually(
            lambda: client.get(f"{api}/v1/invoices/{invoice['id']}/reminders", headers=auth),
            lambda answer: len(answer.json()["items"]) == len(kinds),
        ).json()["items"]
        assert [step["kind"] for step in reminders] == kinds
        shown = client.get(f"{api}/v1/invoices/{invoice['id']}", headers=auth).json()
        assert shown["next_step"]["kind"] in {"issuance", "pre_due"}

        # the notifier sent the issuance email; the catcher kept it
        mails = eventually(lambda: caught(dev_run), lambda found: len(found) >= 1)
        [issuance] = mails
        assert issuance["X-Invoice-Id"] == invoice["id"]
        assert issuance["X-Reminder-Kind"] == "issuance"
        assert "FA-E2E-1" in issuance["Subject"]
        assert issuance["To"] == "compta@martin.example"

        # and invoice-api shows it in the activity feed and on the step
        activity = eventually(
            lambda: client.get(f"{api}/v1/invoices/{invoice['id']}/activity", headers=auth),
            lambda answer: any(i["kind"] == "email.sent" for i in answer.json()["items"]),
        ).json()["items"]
        assert any(i["kind"] == "email.sent" for i in activity), activity
        steps = eventually(
            lambda: client.get(f"{api}/v1/invoices/{invoice['id']}/reminders", headers=auth),
            lambda answer: answer.json()["items"][0]["status"] == "sent",
        ).json()["items"]
        assert steps[0]["status"] == "sent"

        # the customer says it pays on the day of pre_due: the next step shown moves to the
        # end of the hold, three business days later, and says why
        pre_due = datetime.fromisoformat(steps[1]["scheduled_for"]).astimezone(PARIS)
        answer = client.post(
            f"{api}/v1/invoices/{invoice['id']}/payment-schedule",
            json={"planned_on": pre_due.date().isoformat()},
            headers=auth,
        )
        assert answer.status_code == 201, answer.text
        moved = eventually(
            lambda: client.get(f"{api}/v1/invoices/{invoice['id']}", headers=auth),
            lambda answer: (answer.json()["next_step"] or {}).get("held"),
        ).json()["next_step"]
        hold_end = schedule_hold_ends(pre_due.date(), ReminderRules())
        assert (moved["kind"], moved["hold_reason"]) == ("pre_due", "payment_scheduled")
        assert datetime.fromisoformat(moved["scheduled_for"]) == hold_end
        assert datetime.fromisoformat(moved["planned_for"]) == pre_due


def caught(run: DevRun) -> list[Any]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((run.data_dir / "mail").glob("*.eml"))
    ]
