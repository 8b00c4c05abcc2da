"""Sending one email over SMTP. Nothing else in vcpay talks to the mail server.

Each message is what receiving servers expect: ``Date`` and ``Message-ID`` headers, a
plain-text part beside the HTML one (multipart/alternative, text first), and a From whose
display name may be the clinic's, in any script.

Headers in another script go out as RFC 2047 encoded words written by ``email.header``: the
newer ``email.policy`` folding, in the Python vcpay runs on, puts the space between two words
outside the encoded words where it splits a long subject, and mail clients then drop it
("физикалнамедицина"). Only an address in another script, which needs SMTPUTF8 and so
carries its headers as UTF-8 without encoded words, is written with ``EmailMessage``.
"""

import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime
from email import charset
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid, parseaddr
from urllib.parse import urlsplit

from flask import current_app

# UTF-8 bodies as quoted-printable: readable ASCII stays readable, any script travels.
UTF8_BODY = charset.Charset("utf-8")
UTF8_BODY.body_encoding = charset.QP


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


def sender(sender_name: str = "") -> tuple[str, str]:
    """The configured From address's display name, or ``sender_name`` if given, and address."""
    configured_name, address = parseaddr(current_app.config["MAIL_FROM"])
    return " ".join((sender_name or configured_name).split()), address  # on one line


def build_message(mail: Mail) -> Message:
    name, address = sender(mail.sender_name)
    if (mail.recipient + address).isascii():
        message = MIMEMultipart("alternative")
        message.attach(MIMEText(mail.text, "plain", UTF8_BODY))
        message.attach(MIMEText(mail.html, "html", UTF8_BODY))
        from_header, subject = _address(name, address), _text(mail.subject, "Subject")
    else:
        message = EmailMessage()
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        from_header, subject = Address(display_name=name, addr_spec=address), mail.subject
    message["From"] = from_header
    message["To"] = mail.recipient
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = mail.message_id
    return message


def _text(value: str, header_name: str) -> str | Header:
    return value if value.isascii() else Header(value, "utf-8", header_name=header_name)


def _address(name: str, address: str) -> str:
    if name.isascii():
        return formataddr((name, address))
    return f"{Header(name, 'utf-8', header_name='From').encode()} <{address}>"


def send(message: Message) -> None:
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
