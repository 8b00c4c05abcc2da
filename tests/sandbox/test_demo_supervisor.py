"""`make run`'s supervisor (sandbox/demo.py): which processes it starts, from the settings the
product prints. Starting them for real is tests/test_make_run.py's part."""

import json
import subprocess
import sys

from sandbox import demo
from tests.processes import ROOT, product_environment

SETTINGS = {
    "PUBLIC_URL": "http://127.0.0.1:5000",
    "WEB_THREADS": 64,
    "JIRA_URL": "http://127.0.0.1:5081",
    "STRIPE_API_BASE": "http://127.0.0.1:5083",
    "STRIPE_CLIENT_ID": "ca_vcpay_sandbox",
    "SMTP_HOST": "127.0.0.1",
    "SMTP_PORT": 1025,
    "MAIL_CATCHER_URL": "http://127.0.0.1:5082",
    "INSTANCE_PATH": "/srv/vcpay/instance",
    "EMBEDDED_BROKER": True,
    "DEMO_PASSWORD": "vcpay-demo-2026",
    "DEMO_PEOPLE": [{"email": "manager@harbourside.example", "role": "manager"}],
}


def test_every_process_of_the_demo_with_stand_ins_for_services_on_this_machine():
    processes = demo.demo_processes(SETTINGS)

    assert list(processes) == ["jira", "stripe", "mail", "web", "worker", "beat"]
    assert processes["jira"][1:3] == ["-m", "sandbox.jira"]
    assert processes["stripe"][1:3] == ["-m", "sandbox.stripe"]
    assert processes["mail"][1:3] == ["-m", "sandbox.mail"]
    assert "/srv/vcpay/instance/stripe-standin.json" in processes["stripe"]
    web = processes["web"]
    assert web[web.index("--bind") + 1] == "127.0.0.1:5000"
    assert web[web.index("--threads") + 1] == "64"
    assert processes["worker"][-2:] == ["--without-mingle", "--without-gossip"]
    assert "/srv/vcpay/instance/celerybeat-schedule" in processes["beat"]


def test_no_stand_in_for_a_service_elsewhere_and_a_broadcasting_broker():
    elsewhere = {
        **SETTINGS,
        "JIRA_URL": "https://clinic.atlassian.net",
        "STRIPE_API_BASE": "https://api.stripe.com",
        "SMTP_HOST": "smtp.example.org",
        "EMBEDDED_BROKER": False,
    }

    processes = demo.demo_processes(elsewhere)

    assert list(processes) == ["web", "worker", "beat"]
    assert "--without-mingle" not in processes["worker"]


def test_the_product_tells_the_supervisor_its_settings(tmp_path):
    env = product_environment(VCPAY_INSTANCE_PATH=str(tmp_path), VCPAY_WEB_THREADS="12")
    answer = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sandbox.demo as d; print(json.dumps(d.product_settings()))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    settings = json.loads(answer.stdout)

    assert settings["WEB_THREADS"] == 12
    assert settings["INSTANCE_PATH"] == str(tmp_path)
    assert set(demo.demo_processes(settings)) == {"jira", "stripe", "mail", "web", "worker", "beat"}
