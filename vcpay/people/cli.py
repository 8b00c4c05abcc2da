"""``flask people``: the operator's view of who has an account, and a way to stop one.

For the operator at the server, not for admins in the product: disabling here works even
when every admin of an organisation has left. Each change is audit-logged with no person as
its actor (the operator), and a disabled person's browsers are signed out at once.
"""

import click
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from vcpay.audit.services import record_audit
from vcpay.extensions import db
from vcpay.people.models import ClinicMembership, Organisation, OrganisationMembership, User
from vcpay.people.services import disable_user, find_user_by_email

people = AppGroup("people", help="People with an account: list them, disable or enable one.")


def roles_of(user: User) -> list[str]:
    """Each role the person holds, as "role: place", organisation roles first."""
    roles = []
    for membership in user.organisation_memberships:
        role = "telehealth manager" if membership.is_telehealth_manager else "organisation admin"
        roles.append(f"{role}: {membership.organisation.name}")
    for membership in user.clinic_memberships:
        roles.append(f"{membership.role.replace('_', ' ')}: {membership.clinic.name}")
    return roles


def _everyone(organisation: Organisation | None) -> list[User]:
    query = select(User).order_by(User.email)
    if organisation is not None:
        in_clinics = select(ClinicMembership.user_id).where(
            ClinicMembership.clinic_id.in_(c.id for c in organisation.clinics)
        )
        as_admins = select(OrganisationMembership.user_id).filter_by(
            organisation_id=organisation.id
        )
        query = query.where(User.id.in_(in_clinics) | User.id.in_(as_admins))
    options = (
        selectinload(User.organisation_memberships).selectinload(
            OrganisationMembership.organisation
        ),
        selectinload(User.clinic_memberships).selectinload(ClinicMembership.clinic),
    )
    return list(db.session.scalars(query.options(*options)))


def _organisation_named(name: str) -> Organisation:
    organisation = db.session.scalar(select(Organisation).filter_by(name=name))
    if organisation is None:
        raise click.ClickException(f"No organisation is named {name!r}.")
    return organisation


def _person(email: str) -> User:
    user = find_user_by_email(email)
    if user is None:
        raise click.ClickException(f"Nobody has an account with the email {email!r}.")
    return user


@people.command("list")
@click.option("--organisation", "organisation_name", help="Only this organisation's people.")
def list_command(organisation_name: str | None) -> None:
    """Every person, with their roles and whether they can sign in."""
    organisation = _organisation_named(organisation_name) if organisation_name else None
    found = _everyone(organisation)
    if not found:
        click.echo("Nobody yet.")
        return
    for user in found:
        state = "disabled" if user.is_disabled else "active"
        click.echo(f"{user.email}  {user.name}  ({state})")
        for role in roles_of(user) or ["no role"]:
            click.echo(f"    {role}")


@people.command("disable")
@click.argument("email")
def disable_command(email: str) -> None:
    """Stop a person signing in, and sign out every browser they are signed in on."""
    user = _person(email)
    if user.is_disabled:
        click.echo(f"{user.email} is already disabled.")
        return
    disable_user(user)
    record_audit("user.disabled", user, by="operator")
    db.session.commit()
    click.echo(f"Disabled {user.email}: they cannot sign in, and are signed out everywhere.")


@people.command("enable")
@click.argument("email")
def enable_command(email: str) -> None:
    """Let a disabled person sign in again (with the password they had)."""
    user = _person(email)
    if not user.is_disabled:
        click.echo(f"{user.email} can already sign in.")
        return
    user.is_disabled = False
    record_audit("user.enabled", user, by="operator")
    db.session.commit()
    click.echo(f"Enabled {user.email}: they can sign in again.")
