"""A local SMTP catcher for the demo and the tests: keeps every email, sends none on.

Standalone on purpose (stdlib, aiosmtpd, Flask): it never imports the vcpay app.
"""

from sandbox.mail.catcher import MailCatcher, start_mail_catcher
from sandbox.mail.smtp import start_smtp_catcher
from sandbox.mail.store import CaughtMessage, MailStore
from sandbox.mail.web import create_mail_catcher_app

__all__ = [
    "CaughtMessage",
    "MailCatcher",
    "MailStore",
    "create_mail_catcher_app",
    "start_mail_catcher",
    "start_smtp_catcher",
]
