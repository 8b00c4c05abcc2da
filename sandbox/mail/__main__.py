"""``python -m sandbox.mail``: the SMTP catcher and its web page until SIGINT or SIGTERM."""

import argparse
import signal
import threading

from sandbox.mail.catcher import start_mail_catcher


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.mail", description="Catch the email vcpay sends."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=5082)
    parser.add_argument("--folder", help="keep messages here as .eml files (default: memory)")
    return parser.parse_args(argv)


def stop_on_signal() -> threading.Event:
    """An event set by SIGINT or SIGTERM, so both stop the servers the same clean way."""
    stop = threading.Event()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stop.set())
    return stop


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    stop = stop_on_signal()
    catcher = start_mail_catcher(
        arguments.folder, arguments.host, arguments.smtp_port, arguments.http_port
    )
    print(
        f"Mail catcher: SMTP on {arguments.host}:{catcher.smtp_port}, "
        f"sent email at {catcher.web_url}/",
        flush=True,
    )
    try:
        stop.wait()
    finally:
        catcher.stop()


if __name__ == "__main__":
    main()
