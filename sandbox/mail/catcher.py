"""The SMTP server and the web page together, each in a background thread."""

import os
import threading
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller
from werkzeug.serving import BaseWSGIServer, make_server

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
    _web_thread: threading.Thread = field(repr=False)

    def stop(self) -> None:
        self._web.shutdown()
        self._web.server_close()
        self._web_thread.join()
        self._smtp.stop()

    def __enter__(self) -> "MailCatcher":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def start_mail_catcher(
    folder: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    smtp_port: int = 0,
    http_port: int = 0,
) -> MailCatcher:
    """Start both servers; port 0 (the default) means any free port."""
    store = MailStore(folder)
    web = make_server(host, http_port, create_mail_catcher_app(store), threaded=True)
    try:
        smtp, smtp_port = start_smtp_catcher(store, host, smtp_port)
    except BaseException:
        web.server_close()
        raise
    # A short poll interval makes stop() quick; tests start and stop catchers often.
    web_thread = threading.Thread(
        target=web.serve_forever, kwargs={"poll_interval": 0.05}, name="mail-catcher", daemon=True
    )
    web_thread.start()
    return MailCatcher(
        store=store,
        host=host,
        smtp_port=smtp_port,
        web_url=_url(host, web.server_port),
        _smtp=smtp,
        _web=web,
        _web_thread=web_thread,
    )
