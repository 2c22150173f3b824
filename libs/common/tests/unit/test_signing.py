"""Standard Webhooks signatures: what we sign, the reference library accepts; what it signs,
we accept; anything else is a ``BadSignature`` that says why, never another exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from relance.common.signing import BadSignature, new_webhook_secret, signed_headers, verify_signed

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
BODY = '{"type":"payment.recorded","data":{"invoice_number":"FA-1","amount":"10.00"}}'
SECRET = new_webhook_secret()


def headers(**changes: str) -> dict[str, str]:
    found = signed_headers(SECRET, "msg_1", NOW, BODY)
    found.update(changes)
    return found


def test_a_new_secret_is_in_the_whsec_form_and_never_repeats():
    secrets = {new_webhook_secret() for _ in range(100)}
    assert len(secrets) == 100
    assert all(s.startswith("whsec_") and len(s) > 40 for s in secrets)


def test_what_we_sign_the_reference_library_verifies():
    now = datetime.now(UTC)  # the library checks the timestamp against the wall clock
    assert Webhook(SECRET).verify(BODY, signed_headers(SECRET, "m", now, BODY))["type"] == (
        "payment.recorded"
    )


def test_what_the_reference_library_signs_we_verify():
    signature = Webhook(SECRET).sign("msg_9", NOW, BODY)
    given_headers = {
        "webhook-id": "msg_9",
        "webhook-timestamp": str(int(NOW.timestamp())),
        "webhook-signature": signature,
    }
    assert verify_signed(SECRET, BODY.encode(), given_headers, NOW) == "msg_9"


@pytest.mark.parametrize("skew", [timedelta(0), timedelta(minutes=5), -timedelta(minutes=5)])
def test_a_timestamp_within_five_minutes_is_accepted(skew):
    assert verify_signed(SECRET, BODY.encode(), headers(), NOW + skew) == "msg_1"


@pytest.mark.parametrize(
    "skew", [timedelta(minutes=5, seconds=1), -timedelta(minutes=5, seconds=1), timedelta(days=1)]
)
def test_a_timestamp_more_than_five_minutes_off_is_refused(skew):
    with pytest.raises(BadSignature, match="5 minutes"):
        verify_signed(SECRET, BODY.encode(), headers(), NOW + skew)


def test_another_secret_is_refused():
    with pytest.raises(BadSignature, match="no webhook-signature matches"):
        verify_signed(new_webhook_secret(), BODY.encode(), headers(), NOW)


def test_a_body_changed_after_signing_is_refused():
    with pytest.raises(BadSignature, match="no webhook-signature matches"):
        verify_signed(SECRET, BODY.replace("10.00", "1000.00").encode(), headers(), NOW)


def test_a_signature_for_another_message_id_is_refused():
    with pytest.raises(BadSignature, match="no webhook-signature matches"):
        verify_signed(SECRET, BODY.encode(), headers(**{"webhook-id": "msg_2"}), NOW)


def test_one_matching_signature_among_several_is_enough():
    good = headers()["webhook-signature"]
    listed = f"v1,AAAA v2,{good[3:]} {good}"
    assert verify_signed(SECRET, BODY.encode(), headers(**{"webhook-signature": listed}), NOW)


def test_a_matching_signature_under_another_version_is_not_accepted():
    good = headers()["webhook-signature"]
    with pytest.raises(BadSignature):
        verify_signed(SECRET, BODY.encode(), headers(**{"webhook-signature": "v2" + good[2:]}), NOW)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_named(missing):
    given_headers = headers()
    del given_headers[missing]
    with pytest.raises(BadSignature, match="send the webhook-id"):
        verify_signed(SECRET, BODY.encode(), given_headers, NOW)


@pytest.mark.parametrize("stamp", ["soon", "-5", "1.5e9", "\uff11\uff12\uff13", "9" * 40])
def test_a_timestamp_that_is_not_unix_seconds_is_refused(stamp):
    with pytest.raises(BadSignature, match="Unix time"):
        verify_signed(SECRET, BODY.encode(), headers(**{"webhook-timestamp": stamp}), NOW)


@pytest.mark.parametrize("signature", ["v1", "v1,", "v1,@@@", "nocomma", ",", "v1,a b c"])
def test_a_malformed_signature_is_refused_not_crashed_on(signature):
    with pytest.raises(BadSignature):
        verify_signed(SECRET, BODY.encode(), headers(**{"webhook-signature": signature}), NOW)


def test_a_body_that_is_not_utf8_is_refused():
    with pytest.raises(BadSignature, match="UTF-8"):
        verify_signed(SECRET, b"\xff\xfe", headers(), NOW)


def test_an_overlong_message_id_is_refused():
    with pytest.raises(BadSignature, match="longer"):
        verify_signed(SECRET, BODY.encode(), headers(**{"webhook-id": "m" * 201}), NOW)


@given(
    body=st.binary(max_size=200),
    message_id=st.text(max_size=50),
    stamp=st.text(max_size=20),
    signature=st.text(max_size=120),
)
def test_whatever_a_stranger_sends_is_a_bad_signature_or_accepted(
    body, message_id, stamp, signature
):
    sent = {"webhook-id": message_id, "webhook-timestamp": stamp, "webhook-signature": signature}
    with pytest.raises(BadSignature):
        verify_signed(SECRET, body, sent, NOW)
