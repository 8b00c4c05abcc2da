import click
from flask import current_app
from flask.cli import with_appcontext

from vcpay.enablement import polling
from vcpay.integrations.servicedesk import ServiceDesk, ServiceDeskError


@click.command("poll-jira")
@click.option("--sweep", is_flag=True, help="Re-read every open request, not only changes.")
@with_appcontext
def poll_jira_command(sweep: bool) -> None:
    """Apply the service desk's decisions now, without waiting for the next poll."""
    desk = ServiceDesk.from_config(current_app.config)
    try:
        report = polling.sweep(desk) if sweep else polling.poll(desk)
    except ServiceDeskError as error:
        raise click.ClickException(str(error)) from None
    changed = ", ".join(report.changed) or "none"
    click.echo(
        f"{report.searches} search call(s), {report.seen} request(s) seen, changed: {changed}."
    )
