from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, SubmitField

from vcpay.i18n import LANGUAGES


class LanguageForm(FlaskForm):
    language = SelectField(
        _l("Language"),
        choices=list(LANGUAGES.items()),
        validate_choice=True,
    )
    next = HiddenField()
    submit = SubmitField(_l("Change language"))
