"""Sending one email over SMTP. Nothing else in vcpay talks to the mail server.

Each message is what receiving servers expect: ``Date`` and ``Message-ID`` headers, a
plain-text part beside the HTML one (multipart/alternative, text first), and a From whose
display name may be the clinic's, encoded for any script.
"""

import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from urllib.parse import urlsplit

from flask import current_app


class MailNotSent(Exception):
    """The mail server did not take the message; ``temporary`` ones are worth retrying."""

    def __init__(self, message: str, temporary: bool = True):
        super().__init__(message)
        self.temporary = temporary


@dataclass(frozen=True)
class Mail:
    """One email as vcpay wrote it. ``sender_name`` replaces the configured From address's
    display name when given (the clinic a receipt is from)."""

    recipient: str
    subject: str
    text: str
    html: str
    message_id: str
    sender_name: str = ""


def new_message_id() -> str:
    """A Message-ID in the domain vcpay sends from (that of the From address, else of its
    public URL): unique, and given once to an email so that each retry repeats it."""
    config = current_app.config
    _local, at, domain = parseaddr(config["MAIL_FROM"])[1].rpartition("@")
    domain = (at and domain) or urlsplit(config["PUBLIC_URL"]).hostname or "localhost"
    return make_msgid(domain=domain.lower())


def sender(sender_name: str = "") -> Address:
    """The configured From address, named ``sender_name`` if given."""
    configured_name, address = parseaddr(current_app.config["MAIL_FROM"])
    name = " ".join((sender_name or configured_name).split())  # one line, whatever it held
    return Address(display_name=name, addr_spec=address)


def build_message(mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender(mail.sender_name)
    message["To"] = mail.recipient
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = mail.message_id
    message.set_content(mail.text)
    message.add_alternative(mail.html, subtype="html")
    return message


def send(message: EmailMessage) -> None:
    config = current_app.config
    try:
        with smtplib.SMTP(
            config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT_SECONDS"]
        ) as smtp:
            if config["SMTP_STARTTLS"]:
                smtp.starttls()
            if config["SMTP_USERNAME"]:
                smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        raise MailNotSent(f"recipient refused: {error.recipients}", temporary=False) from None
    except smtplib.SMTPResponseException as error:
        temporary = 400 <= error.smtp_code < 500
        raise MailNotSent(f"SMTP {error.smtp_code}", temporary=temporary) from None
    except (OSError, smtplib.SMTPException) as error:
        raise MailNotSent(f"mail server unreachable: {type(error).__name__}") from None
