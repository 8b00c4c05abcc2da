"""Configuration: environment first, embedded defaults, and a README that lists it all."""

import re
from pathlib import Path

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from vcpay import create_app
from vcpay.config import SETTINGS, UnsafeConfiguration, load_settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_embedded_defaults_need_no_server(tmp_path):
    values = load_settings(str(tmp_path), environ={})
    assert values["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'vcpay.sqlite'}"
    assert values["CELERY_BROKER_URL"] == "filesystem://"
    assert values["SESSION_COOKIE_SECURE"] is False
    assert len(values["SECRET_KEY"]) >= 32


def test_the_generated_secret_key_survives_a_restart(tmp_path):
    first = load_settings(str(tmp_path), environ={})["SECRET_KEY"]
    assert load_settings(str(tmp_path), environ={})["SECRET_KEY"] == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_the_environment_wins(tmp_path):
    values = load_settings(
        str(tmp_path),
        environ={
            "VCPAY_DATABASE_URL": "postgresql+psycopg://db.internal/vcpay",
            "VCPAY_SESSION_HOURS": "2",
            "VCPAY_COOKIE_SECURE": "yes",
            "VCPAY_SECRET_KEY": "from-the-environment",
        },
    )
    assert values["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db.internal/vcpay"
    assert values["SESSION_HOURS"] == 2
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["SECRET_KEY"] == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VCPAY_SESSION_HOURS", "twelve"),
        ("VCPAY_COOKIE_SECURE", "maybe"),
        ("VCPAY_TRUSTED_PROXIES", "-1"),
        ("VCPAY_INVITATION_DAYS", "0"),
        ("VCPAY_ADMIN_IDLE_MINUTES", "0"),
        ("VCPAY_READY_HEARTBEAT_SECONDS", "0"),
        ("VCPAY_DEFAULT_TIMEZONE", "Sydney"),
        ("VCPAY_METRICS_TOKEN", "guessable"),
        ("VCPAY_ENV", "staging"),
    ],
)
def test_a_bad_value_names_the_setting(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        load_settings(str(tmp_path), environ={name: value})


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("VCPAY_INVITATION_DAYS", "0", "expected 1 or more days"),
        ("VCPAY_ADMIN_IDLE_MINUTES", "-5", "expected 1 or more"),
        ("VCPAY_READY_WEBHOOK_SECONDS", "0", "expected 1 or more seconds"),
        ("VCPAY_DEFAULT_TIMEZONE", "Sydney", "expected an IANA time zone"),
        ("VCPAY_METRICS_TOKEN", "guessable", "at least 32 random characters"),
        ("VCPAY_ENV", "staging", "expected one of development, production"),
    ],
)
def test_a_bad_value_says_what_was_expected(tmp_path, name, value, reason):
    with pytest.raises(ValueError, match=reason):
        load_settings(str(tmp_path), environ={name: value})


def test_good_values_are_taken_as_given(tmp_path):
    values = load_settings(
        str(tmp_path),
        environ={
            "VCPAY_INVITATION_DAYS": "7",
            "VCPAY_ADMIN_IDLE_MINUTES": "15",
            "VCPAY_DEFAULT_TIMEZONE": "Australia/Perth",
            "VCPAY_METRICS_TOKEN": "m" * 32,
            "VCPAY_ENV": " Production ",
            "VCPAY_READY_HEARTBEAT_SECONDS": "60",
        },
    )
    assert values["READY_HEARTBEAT_SECONDS"] == 60
    assert (values["INVITATION_DAYS"], values["ADMIN_IDLE_MINUTES"]) == (7, 15)
    assert values["BABEL_DEFAULT_TIMEZONE"] == "Australia/Perth"
    assert values["METRICS_TOKEN"] == "m" * 32
    assert values["ENVIRONMENT"] == "production"


def test_the_factory_builds_a_working_app(tmp_path, monkeypatch):
    monkeypatch.setenv("VCPAY_INSTANCE_PATH", str(tmp_path))
    app = create_app({"TESTING": True})
    assert app.instance_path == str(tmp_path)
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert "celery" in app.extensions
    assert {"main", "auth", "client_payments", "calls", "health"} <= set(app.blueprints)


def test_forwarded_headers_are_believed_from_the_trusted_proxies_only(tmp_path, monkeypatch):
    monkeypatch.setenv("VCPAY_INSTANCE_PATH", str(tmp_path))
    assert not isinstance(create_app({"TESTING": True}).wsgi_app, ProxyFix)
    monkeypatch.setenv("VCPAY_TRUSTED_PROXIES", "2")
    behind = create_app({"TESTING": True}).wsgi_app
    assert isinstance(behind, ProxyFix)
    assert (behind.x_for, behind.x_proto, behind.x_host) == (2, 2, 2)


def test_every_setting_is_documented_in_the_readme_with_its_default():
    readme = README.read_text()
    rows = dict(re.findall(r"^\| `(VCPAY_[A-Z_]+)` \| ([^|]+) \|", readme, re.M))
    declared = {setting.env for setting in SETTINGS} | {"VCPAY_INSTANCE_PATH"}
    assert set(rows) == declared
    for setting in SETTINGS:
        if setting.default not in (None, ""):
            assert str(setting.default) in rows[setting.env], setting.env


def test_secrets_are_never_logged(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VCPAY_SECRET_KEY", "do-not-print-me")
    monkeypatch.setenv("VCPAY_INSTANCE_PATH", str(tmp_path))
    caplog.set_level("DEBUG")
    app = create_app()
    app.test_client().get("/sign-in")
    assert "do-not-print-me" not in caplog.text


REAL_STRIPE = {"VCPAY_STRIPE_API_BASE": "https://api.stripe.com"}
REAL_JIRA = {"VCPAY_JIRA_URL": "https://clinic-desk.atlassian.net"}
OWN_STRIPE = {**REAL_STRIPE, "VCPAY_STRIPE_SECRET_KEY": "sk_test_51OwnKeyOfTheClinicPlatform"}
OWN_JIRA = {**REAL_JIRA, "VCPAY_JIRA_API_TOKEN": "ATATT3xFfGF0-own-token"}
PRODUCTION = {
    "VCPAY_ENV": "production",
    "VCPAY_SECRET_KEY": "k" * 16 + "-a-long-random-key-of-our-own",
    "VCPAY_STRIPE_SECRET_KEY": "sk_live_51OwnKeyOfTheClinicPlatform",
    "VCPAY_STRIPE_WEBHOOK_SECRET": "whsec_own_signing_secret",
    "VCPAY_JIRA_API_TOKEN": "ATATT3xFfGF0-own-token",
    "VCPAY_JIRA_WEBHOOK_SECRET": "own-jira-webhook-secret",
}


def app_with(monkeypatch, tmp_path, **environ):
    monkeypatch.setenv("VCPAY_INSTANCE_PATH", str(tmp_path))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    return create_app({"TESTING": True})


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({**OWN_STRIPE, "VCPAY_STRIPE_WEBHOOK_SECRET": "whsec_vcpay_sandbox"},
         "VCPAY_STRIPE_WEBHOOK_SECRET"),
        ({**REAL_STRIPE, "VCPAY_STRIPE_SECRET_KEY": "sk_test_vcpay_sandbox"},
         "VCPAY_STRIPE_SECRET_KEY"),
        ({**OWN_JIRA, "VCPAY_JIRA_WEBHOOK_SECRET": "jira_webhook_vcpay_sandbox"},
         "VCPAY_JIRA_WEBHOOK_SECRET"),
        ({**REAL_JIRA, "VCPAY_JIRA_API_TOKEN": "sandbox-api-token"}, "VCPAY_JIRA_API_TOKEN"),
        (REAL_STRIPE, "VCPAY_STRIPE_SECRET_KEY is not set"),
        (REAL_JIRA, "VCPAY_JIRA_API_TOKEN is not set"),
    ],
)  # fmt: skip
def test_a_published_secret_or_none_at_all_stops_the_start_against_a_real_service(
    monkeypatch, tmp_path, environ, named
):
    with pytest.raises(UnsafeConfiguration, match=named):
        app_with(monkeypatch, tmp_path, **environ)


@pytest.mark.parametrize(
    ("left_out", "named"),
    [
        ("VCPAY_STRIPE_WEBHOOK_SECRET", "VCPAY_STRIPE_WEBHOOK_SECRET"),
        ("VCPAY_STRIPE_SECRET_KEY", "VCPAY_STRIPE_SECRET_KEY"),
        ("VCPAY_JIRA_API_TOKEN", "VCPAY_JIRA_API_TOKEN"),
        ("VCPAY_JIRA_WEBHOOK_SECRET", "VCPAY_JIRA_WEBHOOK_SECRET"),
        ("VCPAY_SECRET_KEY", "VCPAY_SECRET_KEY is not set"),
    ],
)
def test_production_refuses_every_published_secret_even_with_the_stand_ins(
    monkeypatch, tmp_path, left_out, named
):
    environ = {k: v for k, v in PRODUCTION.items() if k != left_out}
    with pytest.raises(UnsafeConfiguration, match=named):
        app_with(monkeypatch, tmp_path, **environ)


@pytest.mark.parametrize("key", ["dev", "change-me", "short-but-random-9f3k"])
def test_production_refuses_a_weak_secret_key(monkeypatch, tmp_path, key):
    with pytest.raises(UnsafeConfiguration, match="VCPAY_SECRET_KEY is too short"):
        app_with(monkeypatch, tmp_path, **{**PRODUCTION, "VCPAY_SECRET_KEY": key})


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        (OWN_STRIPE, "VCPAY_STRIPE_API_BASE is https://api.stripe.com"),
        (OWN_JIRA, "VCPAY_JIRA_URL is https://clinic-desk.atlassian.net"),
        ({"VCPAY_PUBLIC_URL": "https://pay.example.org"}, "VCPAY_PUBLIC_URL"),
        (
            {"VCPAY_DATABASE_URL": "postgresql+psycopg://vcpay:pw-9f3k@db.internal/vcpay"},
            "VCPAY_DATABASE_URL names another machine",
        ),
    ],
)
@pytest.mark.parametrize("key", ["dev", "change-me", "short-but-random-9f3k"])
def test_a_weak_secret_key_stops_the_start_against_a_real_service(
    monkeypatch, tmp_path, environ, named, key
):
    with pytest.raises(UnsafeConfiguration, match="VCPAY_SECRET_KEY is too short") as refused:
        app_with(monkeypatch, tmp_path, **{**environ, "VCPAY_SECRET_KEY": key})
    assert named in str(refused.value)
    assert "pw-9f3k" not in str(refused.value)


def test_a_weak_secret_key_is_the_demos_own_business_while_everything_is_local(
    monkeypatch, tmp_path
):
    local = {
        "VCPAY_SECRET_KEY": "dev",
        "VCPAY_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/vcpay",
        "VCPAY_PUBLIC_URL": "http://localhost:5000",
    }
    assert app_with(monkeypatch, tmp_path, **local).config["SECRET_KEY"] == "dev"


def test_real_services_start_with_the_generated_secret_key(monkeypatch, tmp_path):
    app = app_with(monkeypatch, tmp_path, **OWN_STRIPE, VCPAY_PUBLIC_URL="https://pay.example.org")
    assert len(app.config["SECRET_KEY"]) >= 32


def test_production_starts_with_secrets_of_its_own(monkeypatch, tmp_path):
    app = app_with(monkeypatch, tmp_path, **{**OWN_STRIPE, **OWN_JIRA, **PRODUCTION})
    assert app.config["ENVIRONMENT"] == "production"


def test_real_services_without_webhook_secrets_start_with_the_webhooks_off(
    monkeypatch, tmp_path, caplog
):
    app = app_with(monkeypatch, tmp_path, **OWN_STRIPE, **OWN_JIRA)
    assert app.config["STRIPE_WEBHOOK_SECRET"] == app.config["JIRA_WEBHOOK_SECRET"] == ""
    assert "VCPAY_STRIPE_WEBHOOK_SECRET is not set" in caplog.text


def test_the_stand_ins_published_secrets_are_the_local_defaults(tmp_path):
    values = load_settings(str(tmp_path), environ={})
    assert values["STRIPE_WEBHOOK_SECRET"] == "whsec_vcpay_sandbox"
    assert values["STRIPE_SECRET_KEY"] == "sk_test_vcpay_sandbox"
    assert values["JIRA_WEBHOOK_SECRET"] == "jira_webhook_vcpay_sandbox"
