"""Commands for ``flask --app wsgi ...``: demo data, and what `make run` needs to know."""

import json

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from vcpay.enablement.cli import poll_jira_command
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.people.cli import people
from vcpay.people.demo import DEMO_PASSWORD, DEMO_PEOPLE, seed_demo
from vcpay.people.demo_history import HistoryUnreadable, read_payouts, write_history
from vcpay.people.demo_reset import ResetRefused, delete_demo_files, refuse_unless_local_demo
from vcpay.teams.cli import create_organisation_command
from vcpay.translations_cli import translations
from vcpay.webhooks.cli import stripe_events
from workers import is_embedded_broker


@click.command("seed-demo")
@click.option(
    "--gateway/--no-gateway",
    default=True,
    show_default=True,
    help="Switch the Payment Gateway on for the GP clinic (the other stays off, to request).",
)
@click.option(
    "--migrate",
    is_flag=True,
    help="Apply the migrations first, in the same process (`make run` starts sooner).",
)
@with_appcontext
def seed_demo_command(gateway: bool, migrate: bool) -> None:
    """Create the demo organisation, clinics and people (safe to run again)."""
    if migrate:
        upgrade()
    organisation = seed_demo(enable_gateway=gateway)
    db.session.commit()
    click.echo(f"Demo data ready: {organisation.name}, {len(organisation.clinics)} clinics.")
    for clinic in organisation.clinics:
        state = "on" if clinic.gateway_enabled else "off"
        click.echo(f"  {clinic.name}: Payment Gateway {state}")


@click.command("reset-demo")
@click.option("--yes", is_flag=True, help="Do not ask before deleting the demo's data.")
@with_appcontext
def reset_demo_command(yes: bool) -> None:
    """Start the demo afresh: delete its database, the stand-ins' state and the caught email
    (in the instance folder), then migrate and seed again. Only with `make run` stopped."""
    instance = current_app.instance_path
    try:
        refuse_unless_local_demo(current_app.config, instance)
    except ResetRefused as refused:
        raise click.ClickException(str(refused)) from None
    if not yes:
        click.confirm(f"Delete the demo's data in {instance} and seed it again?", abort=True)
    db.session.remove()
    db.engine.dispose()
    deleted = delete_demo_files(instance)
    click.echo(f"Deleted from {instance}: {', '.join(deleted) or 'nothing was there'}.")
    upgrade()
    organisation = seed_demo(enable_gateway=True)
    db.session.commit()
    click.echo(
        f"Demo data ready: {organisation.name}. `make run` starts it again, "
        "with the GP clinic's past payments."
    )


@click.command("demo-history")
@click.option(
    "--file",
    "source",
    type=click.File("r", encoding="utf-8"),
    default="-",
    show_default="stdin",
    help="The Stripe stand-in's answer to its history control, as JSON.",
)
@with_appcontext
def demo_history_command(source) -> None:
    """Write the GP clinic's past payments, refunds and receipts, from the Stripe stand-in's
    history (`make run` pipes it here), then read the account's payouts (safe to run again)."""
    try:
        answer = json.load(source)
        stripe_api = StripeApi.for_app()
        written = write_history(answer, stripe_api)
    except (ValueError, HistoryUnreadable) as unreadable:
        raise click.ClickException(f"The demo history was not written: {unreadable}") from None
    db.session.commit()
    click.echo(f"Demo history: {written.payments} past payments written, {written.already} kept.")
    payouts = read_payouts(answer["account"], stripe_api)
    db.session.commit()
    click.echo(f"Payouts read from Stripe: {payouts}.")


# What `make run`'s supervisor (sandbox/demo.py) needs to start vcpay's processes and the
# stand-ins beside them. None of them is a secret: the output goes to a terminal.
DEMO_SETTINGS = (
    "PUBLIC_URL",
    "WEB_THREADS",
    "JIRA_URL",
    "STRIPE_API_BASE",
    "STRIPE_CLIENT_ID",
    "SMTP_HOST",
    "SMTP_PORT",
    "MAIL_CATCHER_URL",
)


@click.command("demo-settings")
@with_appcontext
def demo_settings_command() -> None:
    """Print, as one line of JSON, what `make run` needs to start vcpay (no secrets)."""
    config = current_app.config
    settings = {
        **{key: config[key] for key in DEMO_SETTINGS},
        "INSTANCE_PATH": current_app.instance_path,
        "EMBEDDED_BROKER": is_embedded_broker(config["CELERY_BROKER_URL"]),
        "DEMO_PASSWORD": DEMO_PASSWORD,
        "DEMO_PEOPLE": [{"email": p.email, "role": p.role} for p in DEMO_PEOPLE],
    }
    click.echo(json.dumps(settings))


commands = [
    seed_demo_command,
    reset_demo_command,
    demo_history_command,
    demo_settings_command,
    poll_jira_command,
    stripe_events,
    translations,
    people,
    create_organisation_command,
]
