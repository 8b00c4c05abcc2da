"""`make run-prod`'s first step: refuse clearly, or create the database and say what starts.

Production takes every secret from the environment (vcpay/config.py refuses the stand-ins'
published ones and a generated session key), so nothing is generated here: the message names
each variable to set, all at once, with a way to make a key. The PostgreSQL database is
created when it is missing; the migrations then run as deploy/Procfile's ``release``.

    python deploy/prepare.py WEB_INSTANCES FIRST_PORT
"""

import os
import sys
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from vcpay.config import SETTINGS, UnsafeConfiguration, load_settings, refuse_unsafe_settings

HOW_TO_MAKE_A_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"


def secrets_to_set(environ: dict[str, str]) -> list[str]:
    """Secrets production needs from the environment that are not set there: the session key,
    and each one whose local default is published with a stand-in."""
    needed = ["VCPAY_SECRET_KEY"] + [s.env for s in SETTINGS if s.service is not None]
    return [name for name in needed if not environ.get(name)]


def refusal(environ: dict[str, str]) -> str | None:
    """Why the profile cannot start as configured, or None."""
    if missing := secrets_to_set(environ):
        lines = "\n".join(f"  export {name}=..." for name in missing)
        return (
            "The production profile takes its secrets from the environment. Set:\n"
            f"{lines}\n(a random one: {HOW_TO_MAKE_A_KEY}; use the keys your Stripe and "
            "Jira accounts gave you for theirs)."
        )
    if not environ.get("VCPAY_DATABASE_URL", "").startswith("postgresql"):
        return "VCPAY_DATABASE_URL must name a PostgreSQL database in the production profile."
    if not environ.get("VCPAY_REDIS_URL"):
        return "VCPAY_REDIS_URL must name a Redis: it wakes call streams and locks beat."
    instance = environ.get("VCPAY_INSTANCE_PATH") or "instance"
    try:
        refuse_unsafe_settings(load_settings(instance, environ))
    except (UnsafeConfiguration, ValueError) as unsafe:
        return str(unsafe)
    return None


def create_database(url: URL) -> bool:
    """Create the database ``url`` names, unless it exists; whether it was created."""
    server = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            exists = connection.scalar(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": url.database},
            )
            if not exists:
                quoted = connection.dialect.identifier_preparer.quote(url.database)
                connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
    finally:
        server.dispose()
    return not exists


def announce(environ: dict[str, str], web_instances: int, first_port: int, created: bool) -> None:
    host = environ.get("VCPAY_WEB_HOST") or "0.0.0.0"  # noqa: S104  # nosec B104  # as gunicorn.conf.py
    database = make_url(environ["VCPAY_DATABASE_URL"])
    shown = database.render_as_string(hide_password=True)
    print(f"Database {shown}" + (" (created)" if created else ""))
    broker, redis = (
        without_password(environ[n]) for n in ("VCPAY_CELERY_BROKER_URL", "VCPAY_REDIS_URL")
    )
    print(f"Broker {broker}, Redis {redis}")
    print("Starting from deploy/Procfile: the migrations once, then")
    for n in range(web_instances):
        print(f"  web.{n + 1}    http://{host}:{first_port + n}")
    print("  worker.1, worker.2 (Celery), beat.1 (one beat: a second waits on its lock)")
    print(f"vcpay (production profile) will be at {environ.get('VCPAY_PUBLIC_URL')}")
    print("Press Ctrl-C to stop them all.")


def without_password(url: str) -> str:
    """A Redis address as it may be shown: its password, if any, hidden."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def main(arguments: list[str]) -> int:
    environ = dict(os.environ)
    if reason := refusal(environ):
        print(f"make run-prod: {reason}", file=sys.stderr)
        return 2
    created = create_database(make_url(environ["VCPAY_DATABASE_URL"]))
    announce(environ, int(arguments[0]), int(arguments[1]), created)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
