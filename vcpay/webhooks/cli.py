"""``flask stripe-events``: see and retry the Stripe events vcpay could not process."""

import click
from flask.cli import AppGroup
from sqlalchemy import select

from vcpay.extensions import db
from vcpay.webhooks.models import EventState, StripeEvent
from vcpay.webhooks.services import retry_failed

stripe_events = AppGroup("stripe-events", help="Stripe events received by the webhook.")


@stripe_events.command("list")
@click.option(
    "--state",
    type=click.Choice([s.value for s in EventState]),
    default=EventState.FAILED.value,
    show_default=True,
)
@click.option("--limit", default=50, show_default=True)
def list_command(state: str, limit: int) -> None:
    """List events in one state, newest first."""
    events = db.session.scalars(
        select(StripeEvent)
        .filter_by(state=state)
        .order_by(StripeEvent.received_at.desc())
        .limit(limit)
    ).all()
    if not events:
        click.echo(f"No {state} Stripe events.")
        return
    for event in events:
        click.echo(
            f"{event.event_id}  {event.type:<40} {event.account or '-':<24} "
            f"attempts={event.attempts}  received={event.received_at:%Y-%m-%d %H:%M:%S}Z"
        )
        if event.last_error:
            click.echo(f"    last error: {event.last_error}")


@stripe_events.command("retry")
@click.argument("event_ids", nargs=-1)
@click.option("--all-failed", is_flag=True, help="Retry every failed event.")
def retry_command(event_ids: tuple[str, ...], all_failed: bool) -> None:
    """Give failed events (by evt_ id, or all of them) a fresh set of attempts."""
    if bool(event_ids) == all_failed:
        raise click.UsageError("Name the events to retry, or pass --all-failed.")
    retried = retry_failed(None if all_failed else list(event_ids))
    found = {event.event_id for event in retried}
    for missing in sorted(set(event_ids) - found):
        click.echo(f"{missing}: not a failed event; left alone.", err=True)
    click.echo(f"Queued {len(retried)} event(s) for another attempt.")
    if event_ids and len(found) < len(set(event_ids)):
        raise SystemExit(1)
