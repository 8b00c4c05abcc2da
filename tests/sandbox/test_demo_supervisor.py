"""`make run`'s supervisor (sandbox/demo.py): which processes it starts, from the settings the
product prints. Starting them for real is tests/test_make_run.py's part."""

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime

from sandbox import demo, demo_history
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


def test_the_stripe_stand_in_pays_out_on_a_schedule():
    stripe = demo.demo_processes(SETTINGS)["stripe"]

    assert stripe[stripe.index("--payout-seconds") + 1] == demo.PAYOUT_SECONDS
    assert demo.payout_interval("300") == "5 minutes"
    assert demo.payout_interval("90") == "90 seconds"


TODAY = date(2026, 12, 2)  # a Wednesday
NOW = int(datetime(2026, 12, 2, 9, tzinfo=UTC).timestamp())


def test_the_demo_history_is_four_weeks_of_weekdays_and_the_same_every_time():
    planned = demo_history.plan_history(TODAY, NOW)
    days = Counter(p.stripe["key"].rsplit("-", 1)[0].removeprefix("demo-") for p in planned)

    assert planned == demo_history.plan_history(TODAY, NOW)
    assert len(days) == 20  # four weeks of weekdays
    assert all(date.fromisoformat(day).weekday() < 5 for day in days)
    assert all(2 <= count <= 6 for count in days.values())
    assert min(days) == "2026-11-04" and max(days) == "2026-12-01"
    assert len({p.stripe["key"] for p in planned}) == len(planned)
    assert all(p.stripe["created"] < NOW for p in planned)
    assert [p.stripe["created"] for p in planned] == sorted(p.stripe["created"] for p in planned)


def test_the_demo_history_varies_as_a_clinic_s_takings_do():
    planned = demo_history.plan_history(TODAY, NOW)
    stripe = [p.stripe for p in planned]
    paid = [s for s in stripe if s.get("outcome") != "expired"]
    refunded = [s for s in paid if s["refunds"]]

    assert {s["amount"] for s in stripe} >= {4500, 8500, 12000, 26000}
    assert 0.04 <= len(refunded) / len(paid) <= 0.2
    assert any(s["refunds"][0]["amount"] == s["amount"] for s in refunded)
    assert any(s["refunds"][0]["amount"] < s["amount"] for s in refunded)
    assert all(r["created"] < NOW for s in refunded for r in s["refunds"])
    assert any("declined_card" in s for s in paid)
    assert any(p.vcpay.get("ended") == "cancelled" for p in planned)
    assert any(s.get("outcome") == "expired" and not p.vcpay.get("ended")
               for p, s in zip(planned, stripe, strict=True))  # fmt: skip
    assert {s["card"] for s in paid} == {"4242", "5555"}
    assert any(p.vcpay["patient_locale"] == "sr_Cyrl" for p in planned)
    assert any("," in s["description"] and '"' in s["description"] for s in stripe)
