"""The local SMTP catcher: real SMTP in, JSON API and web page out."""

import signal
import smtplib
import socket
import subprocess
import sys
import threading
from email import message_from_bytes, policy
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest
import requests

from sandbox.mail import MailStore, start_mail_catcher, start_smtp_catcher

ROOT = Path(__file__).resolve().parents[2]
RECEIPT_SUBJECT = "Потврда о уплати"  # noqa: RUF001 (Cyrillic letters are the point)
TIMEOUT = 5


@pytest.fixture
def catcher():
    running = start_mail_catcher()
    yield running
    running.stop()


def make_message(
    to: str = "patient@example.org",
    subject: str = "Your receipt",
    text: str = "Thank you for your payment.",
    html: str | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "vcpay <no-reply@vcpay.example>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = "<receipt-1@vcpay>"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def send(port: int, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as smtp:
        smtp.send_message(message)


def api(catcher, path: str = "/api/messages", **params):
    response = requests.get(f"{catcher.web_url}{path}", params=params, timeout=TIMEOUT)
    response.raise_for_status()
    return response.json()


def page(catcher, path: str = "/") -> requests.Response:
    return requests.get(f"{catcher.web_url}{path}", timeout=TIMEOUT)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_plain_text_email_appears_in_the_api_and_on_the_page(catcher):
    send(catcher.smtp_port, make_message())

    [summary] = api(catcher)
    assert summary["from"] == "vcpay <no-reply@vcpay.example>"
    assert summary["to"] == "patient@example.org"
    assert summary["subject"] == "Your receipt"
    assert summary["message_id"] == "<receipt-1@vcpay>"
    assert summary["envelope_sender"] == "no-reply@vcpay.example"
    assert summary["envelope_recipients"] == ["patient@example.org"]
    assert summary["received_at"].endswith("+00:00")
    assert summary["size"] > 0
    full = api(catcher, f"/api/messages/{summary['id']}")
    assert full["text"] == "Thank you for your payment.\n"
    assert full["html"] is None

    listing = page(catcher)
    assert "patient@example.org" in listing.text
    assert f'href="/messages/{summary["id"]}">Your receipt</a>' in listing.text
    message_page = page(catcher, f"/messages/{summary['id']}")
    assert "Thank you for your payment." in message_page.text


def test_multipart_email_keeps_the_text_and_the_html_body(catcher):
    send(catcher.smtp_port, make_message(text="Paid: 50 EUR", html="<p>Paid: <b>50 EUR</b></p>"))

    [summary] = api(catcher)
    full = api(catcher, f"/api/messages/{summary['id']}")
    assert full["text"] == "Paid: 50 EUR\n"
    assert full["html"] == "<p>Paid: <b>50 EUR</b></p>\n"


def test_the_raw_message_is_kept_as_it_arrived(catcher):
    send(catcher.smtp_port, make_message(subject=RECEIPT_SUBJECT, html="<p>Paid</p>"))

    [summary] = api(catcher)
    raw = page(catcher, f"/api/messages/{summary['id']}/raw")
    assert raw.headers["Content-Type"] == "message/rfc822"
    assert raw.content == catcher.store.get(summary["id"]).raw
    parsed = message_from_bytes(raw.content, policy=policy.default)
    assert parsed["Subject"] == RECEIPT_SUBJECT
    assert parsed.get_content_type() == "multipart/alternative"
    assert page(catcher, "/api/messages/000001-abcdef/raw").status_code == 404


def test_a_long_sender_name_in_cyrillic_reads_as_sent(catcher):
    """Folded into several encoded words that split its words, it is joined as RFC 2047 says."""
    name = "Клиника за физикалну медицину и рехабилитацију Харбурсајд"
    message = make_message()
    del message["From"]
    message["From"] = Address(display_name=name, addr_spec="no-reply@vcpay.example")
    send(catcher.smtp_port, message)

    [summary] = api(catcher)
    assert summary["from"] == f"{name} <no-reply@vcpay.example>"
    assert summary["envelope_sender"] == "no-reply@vcpay.example"


def test_cyrillic_subject_is_decoded(catcher):
    send(catcher.smtp_port, make_message(subject=RECEIPT_SUBJECT, text="Примили смо уплату."))

    [summary] = api(catcher)
    assert summary["subject"] == RECEIPT_SUBJECT
    assert api(catcher, f"/api/messages/{summary['id']}")["text"] == "Примили смо уплату.\n"
    assert RECEIPT_SUBJECT in page(catcher).text


def test_several_recipients_and_the_recipient_filter(catcher):
    send(catcher.smtp_port, make_message(to="admin@clinic.example, Billing@Clinic.example"))
    send(catcher.smtp_port, make_message(to="patient@example.org"))

    assert len(api(catcher)) == 2
    [to_billing] = api(catcher, to="billing@clinic.EXAMPLE")
    assert to_billing["envelope_recipients"] == ["admin@clinic.example", "Billing@Clinic.example"]
    assert len(api(catcher, to="patient@example.org")) == 1
    assert api(catcher, to="nobody@example.org") == []


def test_newest_message_comes_first(catcher):
    for subject in ("first", "second", "third"):
        send(catcher.smtp_port, make_message(subject=subject))

    assert [m["subject"] for m in api(catcher)] == ["third", "second", "first"]
    listing = page(catcher).text
    assert listing.index(">third</a>") < listing.index(">second</a>") < listing.index(">first</a>")


def test_clear_deletes_every_message(catcher):
    send(catcher.smtp_port, make_message())
    send(catcher.smtp_port, make_message())

    response = requests.delete(f"{catcher.web_url}/api/messages", timeout=TIMEOUT)

    assert response.json() == {"deleted": 2}
    assert api(catcher) == []


def test_messages_in_a_folder_survive_a_restart(tmp_path):
    with start_mail_catcher(folder=tmp_path) as first:
        send(first.smtp_port, make_message(subject=RECEIPT_SUBJECT, html="<p>Hvala</p>"))
        before = api(first, "/api/messages/" + api(first)[0]["id"])

    with start_mail_catcher(folder=tmp_path) as second:
        assert api(second, f"/api/messages/{before['id']}") == before
        send(second.smtp_port, make_message(subject="after restart"))
        assert [m["subject"] for m in api(second)] == ["after restart", RECEIPT_SUBJECT]

    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 2
    assert all(name.endswith(".eml") for name in files)


def test_stores_sharing_a_folder_see_each_others_messages(tmp_path):
    smtp_side, web_side = MailStore(tmp_path), MailStore(tmp_path)

    caught = smtp_side.add("a@example.org", ["b@example.org"], b"Subject: shared\r\n\r\nhi\r\n")

    assert web_side.get(caught.id) == caught
    assert web_side.clear() == 1
    assert smtp_side.messages() == []


def test_injected_faults_fail_exactly_n_sends_then_let_mail_through(catcher):
    response = requests.post(
        f"{catcher.web_url}/api/faults", json={"fail_next": 2}, timeout=TIMEOUT
    )
    assert response.json() == {"fail_next": 2}

    for _ in range(2):
        with pytest.raises(smtplib.SMTPResponseException) as refused:
            send(catcher.smtp_port, make_message())
        assert isinstance(refused.value, smtplib.SMTPDataError)
        assert refused.value.smtp_code == 451
        assert refused.value.smtp_error == b"4.3.0 Try again later"
    send(catcher.smtp_port, make_message(subject="third try"))

    assert [m["subject"] for m in api(catcher)] == ["third try"]
    assert api(catcher, "/api/faults") == {"fail_next": 0}


@pytest.mark.parametrize("body", [{"fail_next": -1}, {"fail_next": "2"}, {"fail_next": True}, {}])
def test_a_fault_count_that_is_not_a_whole_number_is_refused(catcher, body):
    response = requests.post(f"{catcher.web_url}/api/faults", json=body, timeout=TIMEOUT)

    assert response.status_code == 400
    assert api(catcher, "/api/faults") == {"fail_next": 0}


def test_html_body_is_sandboxed_never_run(catcher):
    script = '<script>parent.document.title="owned"</script><img src=x onerror="alert(1)">'
    send(catcher.smtp_port, make_message(html=f"<p>Receipt</p>{script}"))
    [summary] = api(catcher)

    response = page(catcher, f"/messages/{summary['id']}")

    assert "<script>" not in response.text
    assert 'onerror="alert' not in response.text
    assert '<iframe sandbox srcdoc="&lt;p&gt;Receipt&lt;/p&gt;&lt;script&gt;' in response.text
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_unknown_message_is_not_found(catcher):
    assert page(catcher, "/messages/000001-abcdef").status_code == 404
    assert page(catcher, "/messages/..%2F..%2Fetc%2Fpasswd").status_code == 404
    response = page(catcher, "/api/messages/000001-abcdef")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}


def test_empty_page_says_no_email_has_been_caught(catcher):
    response = page(catcher)

    assert "<title>Sent email (local catcher)</title>" in response.text
    assert "No email has been caught yet." in response.text
    assert "<table" not in response.text


def test_list_page_is_a_captioned_table(catcher):
    send(catcher.smtp_port, make_message())

    listing = page(catcher).text

    assert '<html lang="en">' in listing
    assert "<caption>1 message, newest first</caption>" in listing
    for column in ("Received", "From", "To", "Subject"):
        assert f'<th scope="col">{column}</th>' in listing


def test_smtp_catcher_on_port_zero_reports_its_port_and_offers_no_auth_or_tls():
    controller, port = start_smtp_catcher(MailStore(), port=0)
    try:
        assert port > 0
        with smtplib.SMTP("127.0.0.1", port, timeout=TIMEOUT) as smtp:
            smtp.ehlo()
            assert not smtp.has_extn("auth")
            assert not smtp.has_extn("starttls")
    finally:
        controller.stop()


def test_messages_sent_at_once_are_all_kept(catcher):
    senders = [
        threading.Thread(target=send, args=(catcher.smtp_port, make_message(subject=f"n{n}")))
        for n in range(8)
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()

    caught = api(catcher)
    assert sorted(m["subject"] for m in caught) == [f"n{n}" for n in range(8)]
    assert len({m["id"] for m in caught}) == 8


def test_catcher_does_not_import_the_vcpay_app():
    check = (
        "import sys, sandbox.mail, sandbox.mail.__main__;"
        "assert 'vcpay.extensions' not in sys.modules, 'imports the app'"
    )
    subprocess.run([sys.executable, "-c", check], cwd=ROOT, check=True, timeout=30)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_command_line_serves_both_and_stops_cleanly(tmp_path, stop_signal):
    smtp_port, http_port = free_port(), free_port()
    command = [
        sys.executable, "-m", "sandbox.mail", "--host", "127.0.0.1",
        "--smtp-port", str(smtp_port), "--http-port", str(http_port), "--folder", str(tmp_path),
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        banner = process.stdout.readline()
        assert f"127.0.0.1:{smtp_port}" in banner
        assert f"http://127.0.0.1:{http_port}/" in banner
        send(smtp_port, make_message(subject=RECEIPT_SUBJECT))
        web = requests.get(f"http://127.0.0.1:{http_port}/api/messages", timeout=TIMEOUT)
        assert [m["subject"] for m in web.json()] == [RECEIPT_SUBJECT]

        process.send_signal(stop_signal)

        assert process.wait(timeout=TIMEOUT) == 0
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    assert len(list(tmp_path.glob("*.eml"))) == 1
