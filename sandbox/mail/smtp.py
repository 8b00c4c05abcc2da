"""The SMTP side: a plain local server (no AUTH, no STARTTLS) that keeps every message."""

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from sandbox.mail.store import MailStore

ACCEPTED = "250 Message accepted"
TRY_AGAIN_LATER = "451 4.3.0 Try again later"


class CatchingHandler:
    """Takes every message into the store, unless a test asked for the next ones to fail."""

    def __init__(self, store: MailStore):
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.store.take_failure():
            return TRY_AGAIN_LATER
        self.store.add(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content)
        return ACCEPTED


class CatcherController(Controller):
    """A Controller that can listen on port 0 and then reports the port it was given."""

    def _trigger_server(self) -> None:
        # Controller connects to its own port to check it is up; with port 0 that must be
        # the port the operating system picked, which only the listening socket knows.
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


def start_smtp_catcher(
    store: MailStore, host: str = "127.0.0.1", port: int = 0
) -> tuple[Controller, int]:
    """Start the SMTP server in a background thread; returns it and the port it listens on."""
    controller = CatcherController(CatchingHandler(store), hostname=host, port=port)
    controller.start()
    return controller, controller.port
