from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from vcpay.enablement.forms import EnablementRequestForm, SendBackForm
from vcpay.enablement.models import EnablementRequest, RequestState
from vcpay.enablement.services import (
    ClinicChoice,
    EnablementError,
    can_see_request,
    endorse,
    may_withdraw,
    requestable_clinics,
    save_draft,
    send_back,
    submit,
    withdraw,
)
from vcpay.extensions import db
from vcpay.forms import ConfirmForm
from vcpay.inputs import parse_id
from vcpay.people.models import Organisation
from vcpay.people.permissions import Permission, can, require

blueprint = Blueprint("enablement", __name__, url_prefix="/enablement")


def _organisation(organisation_id: int) -> Organisation:
    organisation = db.session.get(Organisation, organisation_id)
    require(Permission.REQUEST_ENABLEMENT, organisation)
    return organisation


def _request(request_id: int) -> EnablementRequest:
    found = db.session.get(EnablementRequest, request_id)
    require(Permission.VIEW_ORGANISATION, found.organisation if found else None)
    if not can_see_request(current_user, found):
        abort(404)
    return found


@blueprint.route("/organisations/<int:organisation_id>/requests")
@login_required
def index(organisation_id: int):
    organisation = _organisation(organisation_id)
    requests = db.session.scalars(
        select(EnablementRequest)
        .filter_by(organisation_id=organisation.id)
        .order_by(EnablementRequest.id.desc())
    )
    visible = [r for r in requests if can_see_request(current_user, r)]
    return render_template(
        "enablement/index.html",
        organisation=organisation,
        requests=visible,
        can_request=bool(requestable_clinics(current_user, organisation)),
    )


@blueprint.route("/organisations/<int:organisation_id>/requests/new", methods=["GET", "POST"])
@login_required
def new(organisation_id: int):
    organisation = _organisation(organisation_id)
    draft = EnablementRequest(
        organisation=organisation, requester=current_user, state=RequestState.DRAFT.value
    )
    return _edit(draft)


@blueprint.route("/requests/<int:request_id>/edit", methods=["GET", "POST"])
@login_required
def edit(request_id: int):
    found = _request(request_id)
    if found.requester_id != current_user.id:
        abort(403)
    if not found.is_editable:
        flash(_("This request has been sent and can no longer be changed."), "info")
        return redirect(url_for(".detail", request_id=found.id))
    return _edit(found)


def _edit(draft: EnablementRequest):
    organisation = draft.organisation
    clinics = requestable_clinics(current_user, organisation, draft if draft.id else None)
    if not clinics and draft.id is None:
        flash(_("Every clinic you manage is enabled or already in a request."), "info")
        return redirect(url_for(".index", organisation_id=organisation.id))
    form = EnablementRequestForm(obj=None)
    if request.method == "GET":
        _fill(form, draft, clinics)
    names = {c.id: c.name for c in clinics}
    if form.validate_on_submit() and _known_clinics(form, names):
        sending = form.submit.data
        if not sending or form.check_complete(names):
            return _save(draft, form, sending)
    if draft.id is None and draft in db.session:
        db.session.expunge(draft)  # nothing of a refused new request is kept
    status = 400 if request.method == "POST" else 200
    return render_template(
        "enablement/form.html", form=form, draft=draft, organisation=organisation, names=names
    ), status


def _fill(form: EnablementRequestForm, draft: EnablementRequest, clinics) -> None:
    existing = {rc.clinic_id: rc for rc in draft.clinics}
    for clinic in clinics:
        chosen = existing.get(clinic.id)
        form.clinics.append_entry(
            {
                "clinic_id": clinic.id,
                "selected": chosen is not None or len(clinics) == 1,
                "has_stripe_account": chosen.has_stripe_account if chosen else False,
                "stripe_account_hint": chosen.stripe_account_hint if chosen else "",
            }
        )
    form.contact_name.data = draft.contact_name or current_user.name
    form.contact_email.data = draft.contact_email or current_user.email
    form.contact_phone.data = draft.contact_phone or current_user.phone or ""
    form.accept_terms.data = draft.terms_accepted_at is not None
    form.notes.data = draft.notes


def _known_clinics(form: EnablementRequestForm, names: dict[int, str]) -> bool:
    """Refuse a clinic id the form never offered (tampering, or taken meanwhile)."""
    for entry in form.clinics:
        if parse_id(entry.form.clinic_id.data) not in names:
            form.clinic_errors.append(
                _("One of the clinics can no longer be requested. Reload the page and try again.")
            )
            return False
    return True


def _save(draft: EnablementRequest, form: EnablementRequestForm, sending: bool):
    choices = [
        ClinicChoice(
            clinic_id=parse_id(choice.clinic_id.data),
            has_stripe_account=bool(choice.has_stripe_account.data),
            stripe_account_hint=choice.stripe_account_hint.data or "",
        )
        for choice in form.chosen()
    ]
    contact = {
        "name": form.contact_name.data or "",
        "email": form.contact_email.data or "",
        "phone": form.contact_phone.data or "",
    }
    try:
        save_draft(draft, choices, contact, bool(form.accept_terms.data), form.notes.data or "")
        if sending:
            submit(draft, current_user)
    except EnablementError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for(".index", organisation_id=form_organisation_id(draft)))
    db.session.commit()
    flash(_sent_message(draft) if sending else _("Draft saved."), "success")
    return redirect(url_for(".detail", request_id=draft.id))


def form_organisation_id(draft: EnablementRequest) -> int:
    return draft.organisation_id or draft.organisation.id


def _sent_message(draft: EnablementRequest) -> str:
    if draft.state == "queued":
        return _("Request sent to the service desk.")
    return _("Request sent to your telehealth manager for endorsement.")


@blueprint.route("/requests/<int:request_id>")
@login_required
def detail(request_id: int):
    found = _request(request_id)
    is_manager = can(current_user, Permission.ENDORSE_ENABLEMENT, found.organisation)
    return render_template(
        "enablement/detail.html",
        req=found,
        is_manager=is_manager,
        endorse_form=ConfirmForm(),
        send_back_form=SendBackForm(),
        withdraw_form=ConfirmForm(),
        may_withdraw=may_withdraw(current_user, found),
    )


@blueprint.route("/requests/<int:request_id>/endorse", methods=["POST"])
@login_required
def endorse_request(request_id: int):
    found = _request(request_id)
    require(Permission.ENDORSE_ENABLEMENT, found.organisation)
    return _act(
        found,
        ConfirmForm(),
        lambda: endorse(found, current_user),
        _("Endorsed. vcpay is sending the request to the service desk."),
    )


@blueprint.route("/requests/<int:request_id>/send-back", methods=["POST"])
@login_required
def send_back_request(request_id: int):
    found = _request(request_id)
    require(Permission.ENDORSE_ENABLEMENT, found.organisation)
    form = SendBackForm()
    return _act(
        found,
        form,
        lambda: send_back(found, current_user, form.reason.data or ""),
        _("Sent back to %(name)s with your reason.", name=found.requester.name),
    )


@blueprint.route("/requests/<int:request_id>/withdraw", methods=["POST"])
@login_required
def withdraw_request(request_id: int):
    found = _request(request_id)
    if not may_withdraw(current_user, found):
        abort(403)
    return _act(
        found, ConfirmForm(), lambda: withdraw(found, current_user), _("Request withdrawn.")
    )


def _act(found: EnablementRequest, form, action, done_message: str):
    if not form.validate_on_submit():
        abort(400)
    try:
        action()
    except EnablementError as error:
        db.session.rollback()
        flash(str(error), "error")
    else:
        db.session.commit()
        flash(done_message, "success")
    return redirect(url_for(".detail", request_id=found.id))
