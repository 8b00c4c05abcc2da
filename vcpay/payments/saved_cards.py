"""Saved cards: a patient saves a card when they join (where the clinic allows it), on the
Stripe account the call's payments are made on, to be charged after the call; the clinic
admin removes one, and each is detached at Stripe after ``VCPAY_SAVED_CARD_DAYS``. These
flush; the view or task that asked commits.

A card row is made when the patient goes to Stripe's setup page (its session id is unique) and
is saved once, by a guarded update, whichever of the return page and the webhook comes first;
the card itself is unique on its account.
"""

import enum
import hashlib
import logging
from datetime import timedelta

from flask import session, url_for
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from vcpay.audit.services import record_audit
from vcpay.calls.models import Call, Participant, ParticipantRole
from vcpay.client_payments.stripe_link import link_for
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.i18n import checkout_locale
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_card_values import CardSetup, CardSetupRequest
from vcpay.integrations.stripe_errors import StripeApiError
from vcpay.payments import requesting
from vcpay.payments.models import SavedCard
from vcpay.people.models import Clinic, User
from vcpay.transactions import commit_unit

log = logging.getLogger(__name__)
CONSENT_VERSION = "2026-12-02"
DECIDED_KEY = "saved_card_decided"  # the participants who saved or skipped, in this browser
SETUP_MINUTES = 30


class RemovalCause(enum.StrEnum):
    BY_ADMIN = "by_admin"
    EXPIRED = "expired"  # older than VCPAY_SAVED_CARD_DAYS


def consent_text(clinic: Clinic, days: int) -> str:
    """What the patient agrees to by saving a card (its wording is ``CONSENT_VERSION``)."""
    return _(
        "I allow %(clinic)s to keep this card on its Stripe account and charge it, for this "
        "consultation only, amounts its clinicians tell me about during or after the call. "
        "Every charge is emailed to me. Nothing is charged now. The card is removed after "
        "%(days)s days, or sooner if I ask the clinic.",
        clinic=clinic.name,
        days=days,
    )


def set_allowed(clinic: Clinic, allowed: bool, actor: User) -> bool:
    """Switch the clinic's setting; False when it already was so."""
    if clinic.saved_cards_allowed == allowed:
        return False
    clinic.saved_cards_allowed = allowed
    action = "payment.saved_cards_allowed" if allowed else "payment.saved_cards_stopped"
    record_audit(action, clinic, actor=actor)
    return True


def offered(call: Call) -> bool:
    """Whether patients joining the call may save a card: the clinic allows it and the call's
    account can take payments."""
    if not call.clinic.saved_cards_allowed or not call.is_open:
        return False
    return requesting.why_payments_unavailable(call.clinic, call.clinician) is None


def decided(call: Call, patient: Participant) -> bool:
    return patient.id in session.get(DECIDED_KEY, [])


def remember_decided(patient: Participant) -> None:
    kept = [i for i in session.get(DECIDED_KEY, []) if isinstance(i, int)][-50:]
    session[DECIDED_KEY] = [*kept, patient.id]


def patient_gate(call: Call, patient: Participant) -> str | None:
    """The page that offers to save a card, to a patient who has neither saved nor skipped."""
    if patient.role != ParticipantRole.PATIENT or not offered(call) or decided(call, patient):
        return None
    if cards_of(patient):
        return None
    return url_for("saved_cards.save_page", token=call.guest_token)


def cards_of(patient: Participant) -> list[SavedCard]:
    """The cards saved by this person in the call, still usable."""
    query = select(SavedCard).where(
        SavedCard.participant_id == patient.id,
        SavedCard.saved_at.is_not(None),
        SavedCard.removed_at.is_(None),
    )
    return list(db.session.scalars(query.order_by(SavedCard.id)))


def usable_cards(call: Call) -> list[SavedCard]:
    query = select(SavedCard).where(
        SavedCard.call_id == call.id,
        SavedCard.saved_at.is_not(None),
        SavedCard.removed_at.is_(None),
    )
    return list(db.session.scalars(query.order_by(SavedCard.id)))


def clinic_cards(clinic: Clinic) -> list[SavedCard]:
    """The clinic's saved cards, newest first (removed ones too, saying so)."""
    query = select(SavedCard).where(
        SavedCard.clinic_id == clinic.id, SavedCard.saved_at.is_not(None)
    )
    return list(db.session.scalars(query.order_by(SavedCard.saved_at.desc(), SavedCard.id)))


def start_setup(
    call: Call, patient: Participant, email: str, stripe_api: StripeApi, locale: str
) -> SavedCard:
    """A Customer and a setup Checkout page on the call's account; a double click (the same
    key: the call's secret link, the patient, how many tries) makes one."""
    if not offered(call):
        raise requesting.PaymentRefused(_("Saving a card is not offered in this call."))
    link = link_for(call.clinic, call.clinician)
    tries = db.session.scalar(
        select(db.func.count(SavedCard.id)).filter_by(participant_id=patient.id)
    )
    secret = f"{call.guest_token}:{patient.id}:{tries + 1}"
    key = f"card-{hashlib.sha256(secret.encode()).hexdigest()[:32]}"
    order = CardSetupRequest(
        account_id=link.account_id,
        email=email,
        name=patient.display_name,
        success_url=url_for("saved_cards.save_done", token=call.guest_token, _external=True)
        + "?session_id={CHECKOUT_SESSION_ID}",
        cancel_url=url_for("saved_cards.save_page", token=call.guest_token, _external=True)
        + "?back=left",
        expires_at=int(utcnow().timestamp()) + SETUP_MINUTES * 60,
        idempotency_key=key,
        metadata={"call": str(call.id), "participant": str(patient.id)},
        locale=checkout_locale({locale}),
    )
    setup = stripe_api.start_card_setup(order)
    existing = card_for_session(setup.session_id)
    if existing is not None:
        return existing
    card = SavedCard(
        clinic=call.clinic,
        call=call,
        participant=patient,
        account_id=link.account_id,
        customer_id=setup.customer_id or "",
        setup_session_id=setup.session_id,
        setup_url=setup.url or "",
        email=email,
        consent_version=CONSENT_VERSION,
    )
    try:
        with db.session.begin_nested():
            db.session.add(card)
    except IntegrityError:  # the other click recorded the same page first
        return card_for_session(setup.session_id)
    return card


def card_for_session(session_id: str) -> SavedCard | None:
    return db.session.scalar(select(SavedCard).filter_by(setup_session_id=session_id))


def complete(card: SavedCard, stripe_api: StripeApi) -> bool:
    """Ask Stripe (on the card's own account) whether the card was saved; record it once."""
    if card.saved_at is not None:
        return False
    return record_setup(card, stripe_api.read_card_setup(card.account_id, card.setup_session_id))


def record_setup(card: SavedCard, setup: CardSetup) -> bool:
    """The card Stripe saved on the card row's own page, for its own Customer; True if this
    call recorded it (a guarded update: the return page and the webhook record it once)."""
    saved = setup.saved
    if setup.session_id != card.setup_session_id or saved is None:
        return False
    if saved.customer_id != card.customer_id:
        return False
    try:
        with db.session.begin_nested():
            done = db.session.execute(
                update(SavedCard)
                .where(SavedCard.id == card.id, SavedCard.saved_at.is_(None))
                .values(
                    payment_method_id=saved.payment_method_id,
                    brand=saved.brand,
                    last4=saved.last4,
                    exp_month=saved.exp_month,
                    exp_year=saved.exp_year,
                    email=card.email or saved.email,
                    saved_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
    except IntegrityError:  # the same card, already recorded on this account
        return False
    db.session.refresh(card)
    if done.rowcount != 1:
        return False
    record_audit("payment.card_saved", card, actor=None, last4=card.last4)
    return True


def remove(card: SavedCard, cause: RemovalCause, stripe_api: StripeApi, actor=None) -> bool:
    """Detach the card at Stripe, then mark it removed (once)."""
    if card.removed_at is not None or card.payment_method_id is None:
        return False
    stripe_api.detach_card(card.account_id, card.payment_method_id)
    done = db.session.execute(
        update(SavedCard)
        .where(SavedCard.id == card.id, SavedCard.removed_at.is_(None))
        .values(removed_at=utcnow(), removed_cause=cause.value)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(card)
    if done.rowcount != 1:
        return False
    record_audit("payment.card_removed", card, actor=actor, cause=cause.value, last4=card.last4)
    return True


def expired_cards(days: int) -> list[SavedCard]:
    """Cards saved more than ``days`` ago and not yet removed."""
    query = select(SavedCard).where(
        SavedCard.saved_at < utcnow() - timedelta(days=days), SavedCard.removed_at.is_(None)
    )
    return list(db.session.scalars(query.order_by(SavedCard.id).limit(200)))


def detach_expired(stripe_api: StripeApi, days: int) -> int:
    """Remove (detach at Stripe) each card saved more than ``days`` ago, each committed on its
    own; one Stripe cannot detach now is tried again at the next sweep. How many."""
    removed = 0
    for card_id in [card.id for card in expired_cards(days)]:
        card = db.session.get(SavedCard, card_id)
        try:
            removed += remove(card, RemovalCause.EXPIRED, stripe_api)
            commit_unit()
        except StripeApiError as error:
            db.session.rollback()
            log.warning("Could not detach saved card %s: %s", card_id, error)
    return removed
