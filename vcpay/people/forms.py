from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SubmitField


class NoticeSettingsForm(FlaskForm):
    payment_notices = BooleanField(
        _l("Email me about payment problems in the clinics I administer")
    )
    submit = SubmitField(_l("Save settings"))
