"""Mail that real servers accept: what the SMTP mail catcher receives, parsed with Python's
email package as a receiving server would.

Every email has ``Date`` and ``Message-ID`` headers and a plain-text part beside its HTML one
(multipart/alternative, text first); its headers are plain ASCII on the wire whatever the
script; a retry repeats the Message-ID; a patient's receipt comes from the clinic by name.
"""

import re
from datetime import timedelta
from email import message_from_bytes, message_from_string, policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import parsedate_to_datetime

import pytest
from celery.exceptions import Retry
from sqlalchemy import select

from sandbox.mail import start_mail_catcher
from tests.payment_steps import (  # noqa: F401 - the fixtures
    ask,
    clinician_fixture,
    gp_fixture,
    join,
    pay_and_process,
    pay_now,
    start_call,
    the_request,
)
from tests.stripe_standin import process_received, wait_for_events
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.mailer import Mail, build_message
from vcpay.mail.models import OutboundEmail
from vcpay.mail.services import queue_email
from vcpay.mail.tasks import send_email

# What these tests check happens before or beside any query: SQLite alone runs them.
pytestmark = pytest.mark.any_database

SENT_BACK = {
    "request": type("Request", (), {"organisation": type("O", (), {"name": "Harbourside"})}),
    "manager": type("Manager", (), {"name": "Morgan <Lee> & co"}),
    "reason": "Fill in the ABN, see https://example.org/abn.",
    "link": "http://127.0.0.1:5000/enablement/requests/1",
}
MESSAGE_ID = re.compile(r"<[^<>@\s]+@[^<>@\s]+>")
# Long enough to be folded into several encoded words, which split its words.
CYRILLIC_CLINIC = "Клиника „Лука“ – физикална медицина и рехабилитација"  # noqa: RUF001
CYRILLIC_ADDRESS = "пера@пример.срб"  # noqa: RUF001


@pytest.fixture
def catcher(app):
    with start_mail_catcher() as running:
        app.config.update(
            SMTP_HOST=running.host,
            SMTP_PORT=running.smtp_port,
            MAIL_FROM="vcpay <no-reply@mail.vcpay.example>",
        )
        yield running


def deliver(email_id: int) -> None:
    try:
        send_email(email_id)
    finally:
        db.session.expire_all()


def as_received(catcher) -> tuple[EmailMessage, bytes]:
    """The newest message the catcher took, parsed from the bytes that crossed SMTP."""
    raw = catcher.store.messages()[0].raw
    assert b"\r\n" in raw  # as SMTP carries it; lines are read as "\n" below
    return message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default), raw


def parts(message: EmailMessage) -> list[tuple[str, str]]:
    return [(part.get_content_type(), part.get_content()) for part in message.iter_parts()]


def decoded_header(raw: bytes, name: str) -> str:
    unfolded = re.sub(rb"\r?\n[ \t]+", b" ", header_block(raw)).decode("ascii")
    [value] = [
        v for k, _, v in (line.partition(": ") for line in unfolded.splitlines()) if k == name
    ]
    return str(make_header(decode_header(value)))


def header_block(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]


def test_an_email_has_a_date_a_message_id_and_text_beside_html(app, catcher):
    email = queue_email("test:format", "admin@example.org", "Sent back", "sent_back", **SENT_BACK)
    db.session.commit()
    before = utcnow().replace(microsecond=0)
    deliver(email.id)
    message, raw = as_received(catcher)

    sent_at = parsedate_to_datetime(message["Date"])
    assert sent_at.tzinfo is not None
    assert before <= sent_at <= utcnow() + timedelta(seconds=1)
    assert MESSAGE_ID.fullmatch(message["Message-ID"])
    assert message["Message-ID"].endswith("@mail.vcpay.example>")  # the From address's domain
    assert message["Message-ID"] == db.session.get(OutboundEmail, email.id).message_id
    assert (message["From"].addresses[0].display_name, message["From"].addresses[0].addr_spec) == (
        "vcpay", "no-reply@mail.vcpay.example",
    )  # fmt: skip

    assert message.get_content_type() == "multipart/alternative"
    [(text_type, text), (html_type, html)] = parts(message)
    assert (text_type, html_type) == ("text/plain", "text/html")
    assert text.rstrip("\n") == email.body_text.rstrip("\n")
    # The HTML says the same, escaped, with its web addresses as links.
    assert '<html lang="en">' in html
    assert "Morgan &lt;Lee&gt; &amp; co" in html and "<Lee>" not in html
    assert '<a href="https://example.org/abn">https://example.org/abn</a>.' in html
    assert '<a href="http://127.0.0.1:5000/enablement/requests/1">' in html
    assert header_block(raw).isascii()


def test_a_retry_sends_the_same_message_id(app, catcher):
    email = queue_email("test:retry", "admin@example.org", "Sent back", "sent_back", **SENT_BACK)
    db.session.commit()
    kept = email.message_id
    catcher.store.fail_next(1)
    with pytest.raises(Retry):
        deliver(email.id)
    deliver(email.id)
    [message] = catcher.store.messages()
    assert message.message_id == kept == db.session.get(OutboundEmail, email.id).message_id


def test_an_email_queued_before_message_ids_were_kept_gets_one_that_its_retries_repeat(
    app, catcher
):
    email = queue_email("test:legacy", "admin@example.org", "Sent back", "sent_back", **SENT_BACK)
    email.message_id, email.locale = None, None  # as the migration leaves an older row
    db.session.commit()
    catcher.store.fail_next(1)
    with pytest.raises(Retry):
        deliver(email.id)
    given = db.session.get(OutboundEmail, email.id).message_id
    assert given and MESSAGE_ID.fullmatch(given)
    deliver(email.id)
    [message] = catcher.store.messages()
    assert message.message_id == given
    assert message.html is not None


def test_two_emails_never_share_a_message_id(app):
    first = queue_email("test:a", "a@example.org", "S", "sent_back", **SENT_BACK)
    second = queue_email("test:b", "a@example.org", "S", "sent_back", **SENT_BACK)
    assert first.message_id != second.message_id


def test_without_a_domain_in_the_from_address_the_public_urls_host_names_the_message(app):
    app.config.update(MAIL_FROM="vcpay", PUBLIC_URL="https://Pay.Clinic.example/")
    email = queue_email("test:host", "a@example.org", "S", "sent_back", **SENT_BACK)
    assert email.message_id.endswith("@pay.clinic.example>")


def test_the_receipt_comes_from_the_clinic_by_name_in_its_own_script(
    app, clinician, gp, webhooks, catcher
):
    gp.name = CYRILLIC_CLINIC
    db.session.commit()
    call = start_call(clinician, gp)
    patient = join(app, call, "Пера Перић")
    ask(clinician, call, "85.00", "Преглед <b> & контрола")
    request = the_request()
    assert pay_now(patient, call, request, **{"Accept-Language": "sr"}).status_code == 303
    pay_and_process(webhooks, request)
    wait_for_events("checkout.session.completed")
    process_received()
    [receipt] = db.session.scalars(select(OutboundEmail)).all()
    assert receipt.sender_name == CYRILLIC_CLINIC
    deliver(receipt.id)
    message, raw = as_received(catcher)

    [sender] = message["From"].addresses
    assert sender.addr_spec == "no-reply@mail.vcpay.example"
    # Decoded as RFC 2047 says (Python's address parser leaves a space where a word is split).
    assert decoded_header(raw, "From") == f"{CYRILLIC_CLINIC} <no-reply@mail.vcpay.example>"
    assert catcher.store.messages()[0].sender == decoded_header(raw, "From")
    assert header_block(raw).isascii()  # encoded words, which every server takes
    assert "=?utf-8?" in header_block(raw).decode("ascii").lower()
    assert message["Subject"] == receipt.subject and CYRILLIC_CLINIC in message["Subject"]
    assert message["Date"] and MESSAGE_ID.fullmatch(message["Message-ID"])
    [(_, text), (_, html)] = parts(message)
    assert "Преглед <b> & контрола" in text
    assert "Преглед &lt;b&gt; &amp; контрола" in html
    assert '<html lang="sr-Cyrl">' in html
    assert "Плаћени износ: A$85.00" in html, html


def test_an_address_in_another_script_is_written_for_smtputf8(app):
    """Such an address needs SMTPUTF8, where headers travel as UTF-8 (smtplib's choice when
    the server offers it); the message is the same in every other way."""
    mail = Mail(
        recipient=CYRILLIC_ADDRESS,
        subject="Ваш рачун од клинике " + CYRILLIC_CLINIC,
        text="Хвала.",
        html="<p>Хвала.</p>",
        message_id="<1.2.3@vcpay.example>",
        sender_name=CYRILLIC_CLINIC,
    )
    message = build_message(mail)
    raw = message.as_bytes(policy=message.policy.clone(utf8=True))
    parsed = message_from_string(raw.decode("utf-8"), policy=policy.default)
    assert parsed["To"] == CYRILLIC_ADDRESS
    assert parsed["Subject"].strip() == mail.subject  # folded whole onto its own line
    assert parsed["From"].addresses[0].display_name == CYRILLIC_CLINIC
    assert (parsed["Message-ID"], bool(parsed["Date"])) == (mail.message_id, True)
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
