"""The SMTP server and the web page together, each in a background thread."""

import os
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from werkzeug.serving import BaseWSGIServer

from sandbox.common.server import serve_in_background, stop_serving
from sandbox.mail.smtp import start_smtp_catcher
from sandbox.mail.store import MailStore
from sandbox.mail.web import create_mail_catcher_app


@dataclass
class MailCatcher:
    store: MailStore
    host: str
    smtp_port: int
    web_url: str
    _smtp: Controller = field(repr=False)
    _web: BaseWSGIServer = field(repr=False)

    def stop(self) -> None:
        stop_serving(self._web)
        self._smtp.stop()

    def __enter__(self) -> "MailCatcher":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def start_mail_catcher(
    folder: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    smtp_port: int = 0,
    http_port: int = 0,
) -> MailCatcher:
    """Start both servers; port 0 (the default) means any free port."""
    store = MailStore(folder)
    # A short poll interval makes stop() quick; tests start and stop catchers often.
    web_url, web = serve_in_background(
        create_mail_catcher_app(store),
        host,
        http_port,
        quiet=False,
        name="mail-catcher",
        poll_interval=0.05,
    )
    try:
        smtp, smtp_port = start_smtp_catcher(store, host, smtp_port)
    except BaseException:
        stop_serving(web)
        raise
    return MailCatcher(
        store=store, host=host, smtp_port=smtp_port, web_url=web_url, _smtp=smtp, _web=web
    )
