"""The web server's access log, as `make run` starts it, never shows a guest token or an
OAuth or Checkout answer: a real gunicorn on a free port, its log read back."""

import requests

from sandbox.demo import web_command
from tests.processes import free_port, port_open, product_environment, running, wait_for
from vcpay import create_app
from vcpay.extensions import db
from vcpay.redaction import mask_url

TOKEN = "guest-token-of-the-patient-0123456789"
CODE = "ac_authorisation-code-secret"
STATE = "signed-state-secret"
SESSION = "cs_test_checkout-session-secret"
RECEIPT = "InBheS1yZXF1ZXN0LWtleSI.Z3x9Qw.signed-receipt-link-secret"


def demo_web_command(instance, port: int) -> list[str]:
    """The demo's gunicorn command line, on ``port`` with one small worker."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{instance / 'vcpay.sqlite'}"})
    with app.app_context():
        db.create_all()
        command = web_command(app.config)
    command[command.index("--bind") + 1] = f"127.0.0.1:{port}"
    command[command.index("--workers") + 1] = "1"
    command[command.index("--threads") + 1] = "4"
    return command


def test_the_access_log_masks_guest_tokens_and_oauth_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("VCPAY_INSTANCE_PATH", str(tmp_path))
    port = free_port()
    command = demo_web_command(tmp_path, port)
    env = product_environment(VCPAY_INSTANCE_PATH=str(tmp_path))
    log = tmp_path / "web.log"
    base = f"http://127.0.0.1:{port}"
    with running(command, env, log):
        wait_for(lambda: port_open(port), 60, "gunicorn to listen", log)
        referer = {"Referer": f"{base}/join/{TOKEN}"}
        requests.get(f"{base}/join/{TOKEN}", headers=referer, timeout=10)
        requests.get(f"{base}/join/{TOKEN}/payments/k/done?session_id={SESSION}", timeout=10)
        requests.get(f"{base}/join/receipts/{RECEIPT}", timeout=10)
        requests.get(
            f"{base}/client-payments/stripe/callback?code={CODE}&state={STATE}&scope=read_write",
            allow_redirects=False,
            timeout=10,
        )
        wait_for(lambda: "stripe/callback" in log.read_text(), 10, "the access log", log)
    written = log.read_text()
    for secret in (TOKEN, CODE, STATE, SESSION, RECEIPT):
        assert secret not in written
    assert '"GET /join/[hidden] HTTP/1.1" 404' in written
    assert '"GET /join/receipts/[hidden] HTTP/1.1" 404' in written
    assert "/join/[hidden]/payments/k/done?session_id=[hidden]" in written
    assert (
        "/client-payments/stripe/callback?code=[hidden]&state=[hidden]&scope=read_write" in written
    )


def test_the_receipt_emails_signed_link_is_hidden_whole():
    line = f"GET /join/receipts/{RECEIPT}?utm_source=email HTTP/1.1"
    assert mask_url(line) == "GET /join/receipts/[hidden]?utm_source=email HTTP/1.1"
    assert mask_url(f"/join/{TOKEN}/payments/k/pay") == "/join/[hidden]/payments/k/pay"


def test_masking_leaves_other_addresses_alone():
    assert mask_url("/calls/12/events?after=5") == "/calls/12/events?after=5"
    assert mask_url("code=abc&x=1") == "code=[hidden]&x=1"  # a bare query string, as logged
    assert mask_url("/page?barcode=1&postcode=2") == "/page?barcode=1&postcode=2"
