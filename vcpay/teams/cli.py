"""``flask create-organisation``: the operator's one step before an organisation's people
take over by clicking: the organisation, its first clinics, and an invitation to its first
organisation admin."""

import click
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from vcpay.extensions import db
from vcpay.inputs import has_control_character
from vcpay.ledger.forms import time_zone_names
from vcpay.people.models import Organisation
from vcpay.teams.invitations import InvitationProblem, invite
from vcpay.teams.models import InvitedRole
from vcpay.teams.services import TeamProblem, create_clinic

NAME_MAX = 200


def _name(text: str, what: str, hint: str) -> str:
    name = " ".join(text.split())
    if not name or has_control_character(text) or len(name) > NAME_MAX:
        raise click.BadParameter(
            f"a {what} name is one line of 1 to {NAME_MAX} characters, without control characters.",
            param_hint=hint,
        )
    return name


def _email(text: str) -> str:
    try:
        return validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise click.BadParameter(str(error), param_hint="'--admin-email'") from None


def _time_zone(text: str | None) -> str:
    zone = text or current_app.config["BABEL_DEFAULT_TIMEZONE"]
    if zone not in time_zone_names():
        raise click.BadParameter(
            f"{zone!r} is not a time zone name such as Australia/Sydney.",
            param_hint="'--time-zone'",
        )
    return zone


@click.command("create-organisation")
@click.argument("name")
@click.option("--admin-email", required=True, help="Who is invited as its first admin.")
@click.option("--clinic", "clinics", multiple=True, help="A clinic to create too (repeatable).")
@click.option("--time-zone", help="The clinics' IANA time zone [VCPAY_DEFAULT_TIMEZONE].")
@with_appcontext
def create_organisation_command(
    name: str, admin_email: str, clinics: tuple[str, ...], time_zone: str | None
) -> None:
    """Create an organisation (and clinics) and email its first organisation admin an
    invitation; on accepting, they are its telehealth manager too."""
    name, email, zone = (
        _name(name, "organisation", "'NAME'"),
        _email(admin_email),
        _time_zone(time_zone),
    )
    clinic_names = [_name(clinic, "clinic", "'--clinic'") for clinic in clinics]
    if db.session.scalar(select(Organisation.id).filter_by(name=name)) is not None:
        raise click.ClickException(f"An organisation named {name!r} exists already.")
    organisation = Organisation(name=name)
    db.session.add(organisation)
    try:
        for clinic_name in clinic_names:
            create_clinic(organisation, clinic_name, zone)
        invited = invite(email, organisation, InvitedRole.ORGANISATION_ADMIN)
    except (TeamProblem, InvitationProblem) as problem:
        db.session.rollback()
        raise click.ClickException(str(problem)) from None
    db.session.commit()
    click.echo(f"Created {name}" + (f" with {', '.join(clinic_names)}." if clinic_names else "."))
    click.echo(
        f"Invited {email} as its organisation admin; the invitation works until "
        f"{invited.invitation.expires_at:%Y-%m-%d %H:%M} UTC."
    )
    click.echo("If email is not set up yet, give them this link (and nobody else):")
    click.echo(f"  {invited.link}")
