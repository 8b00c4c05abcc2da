from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, ValidationError

MAX_PASSWORD = 200


class SignInForm(FlaskForm):
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(_l("Enter your email address.")), Length(max=254)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(_l("Enter your password.")), Length(max=200)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField(_l("Sign in"))


class SignOutForm(FlaskForm):
    submit = SubmitField(_l("Sign out"))


class NewPassword:
    """A password someone chooses: NIST SP 800-63B's rules (vcpay/auth/passwords.py)."""

    def __call__(self, form, field) -> None:
        from vcpay.auth.passwords import password_problem

        problem = password_problem(field.data or "")
        if problem is not None:
            raise ValidationError(problem)


def _new_password_fields():
    new_password = PasswordField(
        _l("New password"),
        validators=[
            DataRequired(_l("Enter a new password.")),
            Length(max=MAX_PASSWORD),
            NewPassword(),
        ],
        description=_l(
            "At least 12 characters. Any characters, spaces included; a few unrelated words "
            "make a good one."
        ),
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        _l("New password again"),
        validators=[
            DataRequired(_l("Enter the new password again.")),
            EqualTo("new_password", _l("The two new passwords are not the same.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    return new_password, confirm


class ForgotPasswordForm(FlaskForm):
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(_l("Enter your email address.")), Length(max=254)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    submit = SubmitField(_l("Email me a link"))


class ResetPasswordForm(FlaskForm):
    new_password, confirm = _new_password_fields()
    submit = SubmitField(_l("Set my password"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired(_l("Enter your current password.")), Length(max=MAX_PASSWORD)],
        render_kw={"autocomplete": "current-password"},
    )
    new_password, confirm = _new_password_fields()
    submit = SubmitField(_l("Change my password"))


class TwoFactorForm(FlaskForm):
    """The second step of signing in: a code from the app, or one of the recovery codes."""

    code = StringField(
        _l("Code"),
        validators=[DataRequired(_l("Enter the code from your app.")), Length(max=40)],
        description=_l(
            "The 6-digit code your authenticator app shows now, or one of your recovery codes."
        ),
        render_kw={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"},
    )
    submit = SubmitField(_l("Sign in"))


class EnrolForm(FlaskForm):
    code = StringField(
        _l("Code from your app"),
        validators=[DataRequired(_l("Enter the code from your app.")), Length(max=40)],
        description=_l("The 6-digit code your app shows for vcpay after you added it."),
        render_kw={"autocomplete": "one-time-code", "inputmode": "numeric"},
    )
    submit = SubmitField(_l("Turn on two-factor sign-in"))


class TurnOffTwoFactorForm(FlaskForm):
    password = PasswordField(
        _l("Your password"),
        validators=[DataRequired(_l("Enter your password.")), Length(max=MAX_PASSWORD)],
        render_kw={"autocomplete": "current-password"},
    )
    submit = SubmitField(_l("Turn off two-factor sign-in"))
