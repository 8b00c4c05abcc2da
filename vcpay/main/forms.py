from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, SubmitField
from wtforms.fields.choices import SelectChoice

from vcpay.i18n import LANGUAGES


class LanguageForm(FlaskForm):
    language = SelectField(
        _l("Language"),
        choices=[
            SelectChoice(code, name, render_kw={"lang": code.replace("_", "-")})
            for code, name in LANGUAGES.items()
        ],
        validate_choice=True,
    )
    next = HiddenField()
    submit = SubmitField(_l("Change language"))
