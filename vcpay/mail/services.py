"""Queueing email: rows now, delivery by a worker once the change is committed."""

from collections.abc import Iterable
from datetime import timedelta

from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import make_transient_to_detached

from vcpay.claims import stale_before
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.i18n import LANGUAGES
from vcpay.integrations.mailer import Mail, new_message_id
from vcpay.mail.html_body import html_from_text
from vcpay.mail.models import EmailState, OutboundEmail
from vcpay.people.models import User
from vcpay.transactions import after_commit


def queue_email(
    dedupe_key: str,
    recipient: str,
    subject: str,
    template: str,
    locale: str | None = None,
    sender_name: str = "",
    **context,
):
    """Add an email to the outbox unless one with ``dedupe_key`` exists; the caller commits.

    It is written in ``locale``, else the language the recipient chose in vcpay, else the
    default; give ``subject`` as a lazy string (``lazy_gettext``) so it follows too. It comes
    from the configured From address, shown as ``sender_name`` when given (a patient's
    receipt: the clinic's name).
    Returns the new row, or None when this email was queued before (a replayed change).
    """
    email = compose_email(dedupe_key, recipient, subject, template, locale, sender_name, **context)
    if not _added_once(email):
        return None
    _send_once_committed(email.id)
    return email


def _added_once(email: OutboundEmail) -> bool:
    """Insert ``email`` unless a row with its ``dedupe_key`` exists: one statement (``ON
    CONFLICT DO NOTHING``) where looking first took two, and a concurrent twin waits and
    inserts nothing instead of failing its transaction. The new row joins the session as if
    it had been read (its defaults load when asked for). True if it was inserted."""
    values = {
        column.key: getattr(email, column.key)
        for column in OutboundEmail.__table__.columns
        if getattr(email, column.key) is not None
    }
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    inserted = db.session.scalar(
        insert(OutboundEmail)
        .values(values)
        .on_conflict_do_nothing(index_elements=[OutboundEmail.dedupe_key])
        .returning(OutboundEmail.id)
    )
    if inserted is None:
        return False
    email.id = inserted
    make_transient_to_detached(email)
    db.session.add(email)
    return True


def compose_email(
    dedupe_key: str,
    recipient: str,
    subject: str,
    template: str,
    locale: str | None = None,
    sender_name: str = "",
    **context,
) -> OutboundEmail:
    """The email as ``queue_email`` writes it, not yet added to the session nor sent."""
    context.setdefault("public_url", current_app.config["PUBLIC_URL"].rstrip("/"))
    locale = locale or recipient_locale(recipient)
    with force_locale(locale):
        subject, body = str(subject), render_template(f"mail/{template}.txt", **context)
    return OutboundEmail(
        dedupe_key=dedupe_key,
        recipient=recipient,
        subject=subject,
        body_text=body,
        locale=locale,
        sender_name=sender_name[:200],
        message_id=new_message_id(),
    )


def mail_to_send(email: OutboundEmail) -> Mail:
    """The email as the mail server gets it: its text, the same as HTML, its Message-ID.

    An email queued before emails kept a Message-ID is given one now; the caller commits it
    before sending, so a retry repeats it."""
    if email.message_id is None:
        email.message_id = new_message_id()
    lang = email.locale or current_app.config["BABEL_DEFAULT_LOCALE"]
    return Mail(
        recipient=email.recipient,
        subject=email.subject,
        text=email.body_text,
        html=html_from_text(email.body_text, email.subject, lang),
        message_id=email.message_id,
        sender_name=email.sender_name or "",
    )


def recipient_locale(address: str) -> str:
    """The language a person chose in vcpay, or the default for anyone else."""
    chosen = db.session.scalar(
        select(User.locale).filter(func.lower(User.email) == address.lower())
    )
    return chosen if chosen in LANGUAGES else current_app.config["BABEL_DEFAULT_LOCALE"]


def queue_to_each(key: str, recipients: Iterable[str], subject: str, template: str, **context):
    """One email per distinct recipient; returns the rows queued now."""
    queued = []
    for recipient in sorted({r.strip().lower() for r in recipients if r}):
        email = queue_email(f"{key}:{recipient}", recipient, subject, template, **context)
        if email is not None:
            queued.append(email)
    return queued


def _send_once_committed(email_id: int) -> None:
    from vcpay.mail.tasks import send_email

    after_commit(db.session(), lambda: send_email.delay(email_id))


def pending_email_ids(older_than: timedelta = timedelta(minutes=15)) -> list[int]:
    """Emails still unsent well after they were queued: their broker message may be lost,
    or the worker that claimed them died (a claim that old is stale)."""
    cutoff = utcnow() - older_than
    return list(
        db.session.scalars(
            select(OutboundEmail.id).where(
                OutboundEmail.state == EmailState.PENDING.value,
                OutboundEmail.created_at < cutoff,
                or_(OutboundEmail.claimed_at.is_(None), OutboundEmail.claimed_at < stale_before()),
            )
        )
    )
