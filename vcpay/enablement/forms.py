import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    Form,
    FormField,
    HiddenField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import Email, Length, Optional

from vcpay.inputs import BoundedFieldList, PlainText, parse_id

PHONE = re.compile(r"^\+?[0-9 ()-]{6,20}$")


class ClinicChoiceForm(Form):
    """One clinic on the request; a sub-form, so it carries no CSRF token of its own."""

    clinic_id = HiddenField()
    selected = BooleanField(_l("Enable for this clinic"))
    has_stripe_account = BooleanField(_l("This clinic has a Stripe account"))
    stripe_account_hint = StringField(
        _l("Stripe account email or business name"), validators=[Length(max=200), PlainText()]
    )


class EnablementRequestForm(FlaskForm):
    clinics = BoundedFieldList(FormField(ClinicChoiceForm))
    contact_name = StringField(_l("Your name"), validators=[Length(max=200), PlainText()])
    contact_email = EmailField(
        _l("Your email"),
        validators=[
            Optional(),
            Email(_l("Enter an email address like name@clinic.com.au.")),
            Length(max=254),
        ],
    )
    contact_phone = StringField(_l("Your phone"), validators=[Length(max=40)])
    accept_terms = BooleanField(
        _l("I accept the Payment Gateway terms of use and Stripe's fees for each payment.")
    )
    notes = TextAreaField(
        _l("Notes for the service desk (optional)"), validators=[Length(max=2000)]
    )
    save_draft = SubmitField(_l("Save draft"))
    submit = SubmitField(_l("Send request"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Messages about the clinic list as a whole, not one clinic.
        self.clinic_errors: list[str] = []

    def chosen(self) -> list[ClinicChoiceForm]:
        return [entry.form for entry in self.clinics if entry.form.selected.data]

    def check_complete(self, clinic_names: dict[int, str]) -> bool:
        """The checks a request must pass to be sent (a draft may be incomplete)."""
        complete = True

        def refuse(field, message) -> None:
            nonlocal complete
            field.errors = [*field.errors, str(message)]
            complete = False

        if not self.chosen():
            self.clinic_errors.append(str(_l("Choose at least one clinic.")))
            complete = False
        for choice in self.chosen():
            name = clinic_names.get(parse_id(choice.clinic_id.data), "")
            if not choice.has_stripe_account.data:
                refuse(
                    choice.has_stripe_account,
                    _l("Confirm that %(clinic)s has a Stripe account.", clinic=name),
                )
            if not (choice.stripe_account_hint.data or "").strip():
                refuse(
                    choice.stripe_account_hint,
                    _l(
                        "Enter the email or business name of %(clinic)s's Stripe account.",
                        clinic=name,
                    ),
                )
        if not (self.contact_name.data or "").strip():
            refuse(self.contact_name, _l("Enter your name."))
        if not (self.contact_email.data or "").strip():
            refuse(self.contact_email, _l("Enter your email address."))
        phone = (self.contact_phone.data or "").strip()
        if not phone:
            refuse(self.contact_phone, _l("Enter a phone number the service desk can call."))
        elif not PHONE.match(phone):
            refuse(
                self.contact_phone, _l("Enter a phone number like 02 5550 0100 or +61 2 5550 0100.")
            )
        if not self.accept_terms.data:
            refuse(self.accept_terms, _l("Accept the terms and fees to send the request."))
        return complete


class SendBackForm(FlaskForm):
    reason = TextAreaField(_l("Why are you sending it back?"), validators=[Length(max=2000)])
    submit = SubmitField(_l("Send back"))
