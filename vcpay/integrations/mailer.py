"""Sending one email over SMTP. Nothing else in vcpay talks to the mail server."""

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

from flask import current_app


class MailNotSent(Exception):
    """The mail server did not take the message; ``temporary`` ones are worth retrying."""

    def __init__(self, message: str, temporary: bool = True):
        super().__init__(message)
        self.temporary = temporary


def build_message(recipient: str, subject: str, body_text: str, message_key: str) -> EmailMessage:
    config = current_app.config
    message = EmailMessage()
    message["From"] = config["MAIL_FROM"]
    message["To"] = recipient
    message["Subject"] = subject
    # A stable Message-ID lets mail servers and clients drop a duplicate after a retry.
    message["Message-ID"] = make_msgid(idstring=message_key.replace(":", ".")[:60], domain="vcpay")
    message.set_content(body_text)
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
