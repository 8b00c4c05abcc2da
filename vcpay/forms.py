"""Forms that several features use; a feature's own forms stay in its package."""

from flask_wtf import FlaskForm
from wtforms import SubmitField


class ConfirmForm(FlaskForm):
    """A button that changes something (endorse, withdraw, cancel, remove a link): the form
    carries only the CSRF token."""

    submit = SubmitField()
