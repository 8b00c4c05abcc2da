"""Configuration: environment first, embedded defaults, and a README that lists it all."""

import re
from pathlib import Path

import pytest

from vcpay import create_app
from vcpay.config import SETTINGS, load_settings

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
    ("name", "value"), [("VCPAY_SESSION_HOURS", "twelve"), ("VCPAY_COOKIE_SECURE", "maybe")]
)
def test_a_bad_value_names_the_setting(tmp_path, name, value):
    with pytest.raises(ValueError, match=name):
        load_settings(str(tmp_path), environ={name: value})


def test_the_factory_builds_a_working_app(tmp_path, monkeypatch):
    monkeypatch.setenv("VCPAY_INSTANCE_PATH", str(tmp_path))
    app = create_app({"TESTING": True})
    assert app.instance_path == str(tmp_path)
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert "celery" in app.extensions
    assert {"main", "auth", "client_payments", "calls", "health"} <= set(app.blueprints)


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
