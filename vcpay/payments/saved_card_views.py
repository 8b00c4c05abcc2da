"""Saved cards' routes, by audience: the patient's offer to save a card under the guest link
(/join/...), and the clinic admin's setting and list of saved cards under Client Payments.

A patient reaches the offer by the call's link and having joined in this browser; the card is
saved on the call's account, never one they name. Another clinic's card is a 404.
"""

import re

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required

from vcpay.calls.access import call_for_clinician, call_for_link, joined_participant
from vcpay.calls.models import Call, Participant
from vcpay.extensions import db, limiter
from vcpay.forms import ConfirmForm
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import StripeApiError
from vcpay.payments import requesting, saved_card_charges, saved_cards, transitions
from vcpay.payments.amounts import format_amount
from vcpay.payments.models import PaymentState, SavedCard
from vcpay.people.models import Clinic
from vcpay.people.permissions import Permission, require
from vcpay.public_urls import public_url_for

blueprint = Blueprint("saved_cards", __name__)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _to_the_call(call: Call):
    return redirect(url_for("guest.join", token=call.guest_token), code=303)


def _offered_to(call: Call) -> Participant | None:
    """The patient who joined in this browser, while saving a card is offered to them."""
    me = joined_participant(call)
    if me is None or saved_cards.patient_gate(call, me) is None:
        return None
    return me


def _days() -> int:
    return current_app.config["SAVED_CARD_DAYS"]


@blueprint.route("/join/<token>/save-card", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def save_page(token: str):
    """The offer: the consent text, Save a card (to Stripe's setup page) or Skip."""
    call = call_for_link(token)
    if (me := _offered_to(call)) is None:
        return _to_the_call(call)
    if request.method == "GET":
        return _page(call, me, request.args.get("back"))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if request.form.get("choice") != "save":
        saved_cards.remember_decided(me)
        return _to_the_call(call)
    if request.form.get("consent") != saved_cards.CONSENT_VERSION:
        return _page(call, me, None, error=_("Tick the box to agree before saving a card.")), 400
    email = str(request.form.get("email", "")).strip().lower()
    if email and (len(email) > 254 or not EMAIL.fullmatch(email)):
        return _page(call, me, None, error=_("Enter an email address like name@example.org.")), 400
    try:
        card = saved_cards.start_setup(call, me, email, StripeApi.for_app(), str(get_locale()))
    except StripeApiError as error:
        db.session.rollback()
        why = _("Stripe could not open the page to save your card: %(why)s", why=error.words)
        return _page(call, me, None, error=why), 503
    except requesting.PaymentRefused as refused:
        db.session.rollback()
        return _page(call, me, None, error=refused.message), 409
    db.session.commit()
    return redirect(card.setup_url, code=303)


def _page(call: Call, me: Participant, back: str | None, error: str = ""):
    return render_template(
        "payments/save_card.html",
        call=call,
        me=me,
        consent=saved_cards.consent_text(call.clinic, _days()),
        consent_version=saved_cards.CONSENT_VERSION,
        back=back if back == "left" else None,
        error=error,
    )


@blueprint.route("/join/<token>/save-card/done")
def save_done(token: str):
    """Where Stripe sends the patient after saving: Stripe is asked (the redirect proves
    nothing), then the call."""
    call = call_for_link(token)
    me = joined_participant(call)
    card = saved_cards.card_for_session(str(request.args.get("session_id", ""))[:255])
    if me is None or card is None or card.participant_id != me.id:
        return _to_the_call(call)
    try:
        saved = saved_cards.complete(card, StripeApi.for_app())
        db.session.commit()
    except StripeApiError:
        db.session.rollback()  # the webhook will tell
        saved = False
    saved_cards.remember_decided(me)
    if saved or card.saved_at is not None:
        flash(_("Your card ending %(last4)s is saved. Nothing was charged.", last4=card.last4))
    else:
        flash(_("Stripe has not confirmed your card yet. Nothing was charged."), "info")
    return _to_the_call(call)


def _clinic(clinic_id: int) -> Clinic:
    clinic = db.session.get(Clinic, clinic_id)
    require(Permission.MANAGE_CLIENT_PAYMENTS, clinic)
    return clinic


@blueprint.route("/client-payments/clinics/<int:clinic_id>/saved-cards")
@login_required
def clinic_cards(clinic_id: int):
    clinic = _clinic(clinic_id)
    return render_template(
        "payments/saved_cards.html",
        clinic=clinic,
        cards=saved_cards.clinic_cards(clinic),
        days=_days(),
        form=ConfirmForm(),
    )


@blueprint.route("/client-payments/clinics/<int:clinic_id>/saved-cards/setting", methods=["POST"])
@login_required
def set_allowed(clinic_id: int):
    clinic = _clinic(clinic_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    allowed = request.form.get("allowed") == "yes"
    if saved_cards.set_allowed(clinic, allowed, current_user):
        db.session.commit()
    if allowed:
        flash(_("Patients joining %(clinic)s's calls may save a card.", clinic=clinic.name))
    else:
        flash(_("Patients are no longer offered to save a card."), "info")
    return redirect(url_for("saved_cards.clinic_cards", clinic_id=clinic.id), code=303)


@blueprint.route(
    "/client-payments/clinics/<int:clinic_id>/saved-cards/<int:card_id>/remove", methods=["POST"]
)
@login_required
def remove(clinic_id: int, card_id: int):
    """Detach the card at Stripe and mark it removed."""
    clinic = _clinic(clinic_id)
    card = db.session.get(SavedCard, card_id)
    if card is None or card.clinic_id != clinic.id or card.saved_at is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        removed = saved_cards.remove(
            card, saved_cards.RemovalCause.BY_ADMIN, StripeApi.for_app(), current_user
        )
        db.session.commit()
    except StripeApiError as error:
        db.session.rollback()
        flash(_("The card was not removed: %(why)s", why=error.words), "error")
        return redirect(url_for("saved_cards.clinic_cards", clinic_id=clinic.id), code=303)
    if removed:
        flash(_("Card ending %(last4)s removed.", last4=card.last4), "success")
    return redirect(url_for("saved_cards.clinic_cards", clinic_id=clinic.id), code=303)


# The clinician's Charge saved card, on the call's screen (during or after the call).


@blueprint.route("/calls/<int:call_id>/saved-cards/charge", methods=["POST"])
@login_required
@limiter.limit("30 per minute")
def charge(call_id: int):
    call = call_for_clinician(call_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if not request.form.get("card"):
        abort(400)  # no card chosen: the form was not the tool's
    card = saved_card_charges.card_in_call(call, request.form.get("card", ""))
    if card is None:
        abort(404)  # not a card saved in this call (another call's, another clinic's)
    try:
        payment = saved_card_charges.charge(
            call,
            current_user,
            card,
            str(request.form.get("amount", "")),
            str(request.form.get("description", "")),
            str(request.form.get("request_key", "")),
            StripeApi.for_app(),
        )
        db.session.commit()
    except requesting.PaymentRefused as refused:
        db.session.rollback()
        flash(refused.message, "error")
        return _to_screen(call)
    except StripeApiError as error:
        db.session.commit()  # the request is kept: the reconciler asks Stripe again
        flash(_("Stripe did not answer; vcpay will ask again: %(why)s", why=error.words), "error")
        return _to_screen(call)
    _say_outcome(payment)
    return _to_screen(call)


def _say_outcome(payment) -> None:
    amount = format_amount(payment.amount, payment.currency)
    if payment.is_settled:
        flash(_("Paid: %(amount)s charged to the saved card.", amount=amount), "success")
    elif payment.state == PaymentState.FAILED:
        flash(_("Declined: %(why)s", why=payment.last_decline), "error")
    else:
        flash(
            _(
                "The card needs the patient to confirm %(amount)s with their bank: they have "
                "been emailed a link.",
                amount=amount,
            ),
            "info",
        )


def _to_screen(call: Call):
    return redirect(url_for("calls.screen", call_id=call.id) + "#saved-cards", code=303)


# The patient's link from the email, when the card needs them to confirm with their bank.


@blueprint.route("/pay/confirm/<signed>", methods=["GET", "POST"])
@limiter.limit("30 per minute", methods=["POST"])
def authenticate(signed: str):
    payment = saved_card_charges.request_for_link(signed)
    if payment is None:
        abort(404)
    error = ""
    if request.method == "POST" and payment.state == PaymentState.REQUESTED:
        if not ConfirmForm().validate_on_submit():
            abort(400)
        back = public_url_for("saved_cards.authenticated", signed=signed)
        try:
            to_bank = saved_card_charges.confirm_with_patient(payment, back, StripeApi.for_app())
            db.session.commit()
        except StripeApiError as failed:
            db.session.rollback()
            to_bank, error = None, str(failed.words)
        if to_bank:
            return redirect(to_bank, code=303)
    return render_template("payments/saved_card_confirm.html", payment=payment, error=error)


@blueprint.route("/pay/confirm/<signed>/done")
def authenticated(signed: str):
    """Back from 3-D Secure: Stripe is asked (the redirect proves nothing)."""
    payment = saved_card_charges.request_for_link(signed)
    if payment is None:
        abort(404)
    if payment.state == PaymentState.REQUESTED:
        try:
            saved_card_charges.ask_stripe(payment, StripeApi.for_app())
            db.session.commit()
        except (StripeApiError, transitions.NotTheRequests):
            db.session.rollback()
    return redirect(url_for("saved_cards.authenticate", signed=signed), code=303)
