"""The forms of a clinic's Stripe accounts: rename, route a clinician, remove (and say where
its routes and the default go)."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from vcpay.client_payments.models import StripeLink
from vcpay.inputs import PlainText
from vcpay.people.models import User

# The removal form's choice for routes: the clinicians' payments go to the clinic's default.
TO_DEFAULT = "default"


def _choices(links: list[StripeLink]) -> list[tuple[str, str]]:
    return [(str(link.id), f"{link.label} ({link.account_id})") for link in links]


class RenameAccountForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[
            DataRequired(_l("Enter a name for the account.")),
            Length(max=200, message=_l("Keep the name to 200 characters or fewer.")),
            PlainText(),
        ],
    )
    submit = SubmitField(_l("Rename"))


class RouteForm(FlaskForm):
    clinician = SelectField(_l("Clinician"), choices=[], validate_choice=True)
    link = SelectField(_l("Account"), choices=[], validate_choice=True)
    submit = SubmitField(_l("Route their payments"))

    def offer(self, clinicians: list[User], links: list[StripeLink]) -> "RouteForm":
        self.clinician.choices = [(str(person.id), person.name) for person in clinicians]
        self.link.choices = _choices(links)
        return self


class RemoveAccountForm(FlaskForm):
    """The new default is asked for when the default is removed and others remain; where the
    routes go, when the account has routes and others remain."""

    new_default = SelectField(_l("New default account"), choices=[], validate_choice=True)
    routes_to = SelectField(
        _l("Payments of the clinicians routed to it go to"), choices=[], validate_choice=True
    )
    submit = SubmitField(_l("Remove Stripe account"))

    def offer(self, link: StripeLink, others: list[StripeLink], routed: int) -> "RemoveAccountForm":
        if link.is_default and others:
            self.new_default.choices = _choices(others)
        else:
            del self.new_default
        if routed and others:
            default_choice = (TO_DEFAULT, str(_l("The clinic's default account")))
            self.routes_to.choices = [default_choice, *_choices(others)]
        else:
            del self.routes_to
        return self
