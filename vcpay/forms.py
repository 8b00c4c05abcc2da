"""Forms that several features use; a feature's own forms stay in its package."""

from flask_wtf import FlaskForm
from wtforms import SubmitField


class ConfirmForm(FlaskForm):
    """A button that changes something (endorse, withdraw, cancel, remove a link): the form
    carries only the CSRF token."""

    submit = SubmitField()


def field_aria(field, *hints: str, error: str | bool | None = None) -> dict[str, str]:
    """The attributes that tie a field to its hints and its error for screen readers, only
    those that apply: WTForms writes an attribute given as None as the text "None".

    ``hints`` are the ids of the hints beside the field. The field is invalid when it has
    errors, shown in ``<field id>-error`` (the ``field_errors`` macro in ``_fields.html``),
    or when ``error`` names the id of a message shown elsewhere (the form's one error);
    ``False`` says it is not the field at fault."""
    invalid = bool(error) if error is not None else bool(field.errors)
    described = list(hints)
    if invalid:
        described.append(error if isinstance(error, str) else f"{field.id}-error")
    attributes = {"aria-describedby": " ".join(described)} if described else {}
    if invalid:
        attributes["aria-invalid"] = "true"
    return attributes
