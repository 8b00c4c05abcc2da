from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Email, Length

from vcpay.auth.forms import _new_password_fields
from vcpay.inputs import PlainText
from vcpay.ledger.forms import time_zone_names
from vcpay.teams.invitations import ROLE_NAMES
from vcpay.teams.models import InvitedRole

NO_CLINIC = ""
CLINIC_ROLES = (InvitedRole.CLINIC_ADMIN, InvitedRole.CLINICIAN)


def _role_choice(role: InvitedRole) -> tuple[str, str]:
    """A role as the list offers it: its name, capitalised in the person's language."""
    name = str(ROLE_NAMES[role])
    return role.value, name[:1].upper() + name[1:]


def _stripped(value):
    return value.strip() if isinstance(value, str) else value


def _email_field():
    return StringField(
        _l("Email address"),
        validators=[
            DataRequired(_l("Enter the email address of the person to invite.")),
            Length(max=254, message=_l("An email address has at most 254 characters.")),
            PlainText(),
            Email(
                _l("Enter an email address such as sam@example.org."), check_deliverability=False
            ),
        ],
        filters=[_stripped],
        render_kw={"autocomplete": "off"},
    )


def _clinic_name_field(label, field_id: str | None = None):
    return StringField(
        label,
        id=field_id,
        validators=[
            DataRequired(_l("Enter the clinic's name.")),
            Length(max=200, message=_l("A clinic's name has at most 200 characters.")),
            PlainText(),
        ],
    )


class InviteForm(FlaskForm):
    """An organisation admin's: any role, a clinic for the clinic roles."""

    email = _email_field()
    role = SelectField(
        _l("Role"),
        choices=[],
        validate_choice=True,
    )
    clinic = SelectField(_l("Clinic"), choices=[], validate_choice=True)
    submit = SubmitField(_l("Send the invitation"))

    def __init__(self, clinics, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = [_role_choice(role) for role in InvitedRole]
        self.clinic.choices = [
            (NO_CLINIC, _l("None: an organisation admin")),
            *((str(c.id), c.name) for c in clinics),
        ]

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        organisation_role = self.role.data == InvitedRole.ORGANISATION_ADMIN
        if organisation_role and self.clinic.data != NO_CLINIC:
            self.clinic.errors.append(
                _l("An organisation admin is invited to the whole organisation: choose no clinic.")
            )
            return False
        if not organisation_role and self.clinic.data == NO_CLINIC:
            self.clinic.errors.append(_l("Choose the clinic for a clinic admin or clinician."))
            return False
        return True


class ClinicInviteForm(FlaskForm):
    """A clinic admin's: their clinic's roles only."""

    email = _email_field()
    role = SelectField(_l("Role"), choices=[], validate_choice=True)
    submit = SubmitField(_l("Send the invitation"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = [_role_choice(role) for role in CLINIC_ROLES]


class ClinicRoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[], validate_choice=True)
    submit = SubmitField(_l("Change role"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.role.choices = [_role_choice(role) for role in CLINIC_ROLES]


class NewClinicForm(FlaskForm):
    name = _clinic_name_field(_l("Clinic name"))
    time_zone = SelectField(_l("Time zone"), choices=[], validate_choice=True)
    submit = SubmitField(_l("Create the clinic"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.time_zone.choices = [(name, name.replace("_", " ")) for name in time_zone_names()]


class RenameClinicForm(FlaskForm):
    # Its own id: the page shows it beside the new clinic's name field.
    name = _clinic_name_field(_l("New name"), field_id="new-name")
    submit = SubmitField(_l("Rename"))


class TelehealthManagerForm(FlaskForm):
    person = SelectField(_l("Authorised telehealth manager"), choices=[], validate_choice=True)
    submit = SubmitField(_l("Make them the telehealth manager"))

    def __init__(self, admins, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.person.choices = [(str(user.id), f"{user.name} ({user.email})") for user in admins]


class AcceptInvitationForm(FlaskForm):
    name = StringField(
        _l("Your name"),
        validators=[
            DataRequired(_l("Enter your name.")),
            Length(max=200, message=_l("A name has at most 200 characters.")),
            PlainText(),
        ],
        render_kw={"autocomplete": "name"},
    )
    new_password, confirm = _new_password_fields()
    submit = SubmitField(_l("Join"))


class AcceptForExistingAccountForm(FlaskForm):
    submit = SubmitField(_l("Accept the invitation"))
