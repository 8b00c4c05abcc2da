from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from vcpay.inputs import PlainText


class StartCallForm(FlaskForm):
    clinic_id = HiddenField()
    title = StringField(
        _l("Patient or appointment (optional)"),
        validators=[
            Length(max=120, message=_l("Keep the title to 120 characters or fewer.")),
            PlainText(),
        ],
    )
    submit = SubmitField(_l("Start a call"))


class JoinForm(FlaskForm):
    display_name = StringField(
        _l("Your name"),
        validators=[
            DataRequired(_l("Enter the name the clinician will see.")),
            Length(max=80, message=_l("Keep your name to 80 characters or fewer.")),
            PlainText(),
        ],
    )
    submit = SubmitField(_l("Join the call"))
