from celery import shared_task
from flask import current_app

from vcpay.claims import claim
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.mailer import MailNotSent, build_message, send
from vcpay.mail.models import EmailState, OutboundEmail
from vcpay.mail.services import mail_to_send, pending_email_ids

RETRY_DELAYS = (10, 30, 60, 300, 900, 3600)


@shared_task(name="vcpay.mail.send_email", bind=True, max_retries=None, ignore_result=True)
def send_email(self, email_id: int) -> None:
    pending = OutboundEmail.id == email_id, OutboundEmail.state == EmailState.PENDING.value
    if not claim(OutboundEmail.claimed_at, *pending):
        return  # sent already, or another worker is sending it now
    email = db.session.get(OutboundEmail, email_id)
    mail = mail_to_send(email)
    if db.session.is_modified(email):
        db.session.commit()  # its new Message-ID, kept before any attempt to send it
    message = build_message(mail)
    try:
        send(message)
    except MailNotSent as error:
        email.attempts += 1
        email.last_error = str(error)
        email.claimed_at = None  # free for the retry
        db.session.commit()
        if not error.temporary:
            current_app.logger.warning("Email %s refused for good: %s", email_id, error)
            return
        delay = RETRY_DELAYS[min(self.request.retries, len(RETRY_DELAYS) - 1)]
        raise self.retry(countdown=delay) from None
    email.state = EmailState.SENT.value
    email.attempts += 1
    email.sent_at = utcnow()
    email.last_error = None
    db.session.commit()


@shared_task(name="vcpay.mail.resend_pending", ignore_result=True)
def resend_pending() -> None:
    """Re-queue email a lost broker message, or a worker that died sending it, left behind;
    a claim shorter than ``CLAIM_TIMEOUT`` is left to the worker holding it."""
    for email_id in pending_email_ids():
        send_email.delay(email_id)
