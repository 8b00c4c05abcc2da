"""Linking a clinic's existing Stripe account through Connect OAuth.

"Go to Stripe" records an attempt whose nonce travels in a signed ``state``; the nonce is
also kept in the browser's session. The callback accepts the state only if its signature is
good and fresh, the same browser started it, and it has not been used: each check has its
own message, and every failure stores nothing.
"""

import secrets
from dataclasses import dataclass

from flask import current_app, session
from flask_babel import gettext as _
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from vcpay.audit.services import record_audit
from vcpay.calls.services import clinic_tools_changed
from vcpay.client_payments.models import (
    AttemptOutcome,
    StripeLink,
    StripeOAuthAttempt,
)
from vcpay.client_payments.stripe_link import (
    apply_account,
    live_link,
    live_links,
    live_links_for_account,
)
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import (
    AuthorisationCodeRejected,
    StripeApiError,
    StripeUnavailable,
)
from vcpay.people.models import Clinic, User
from vcpay.public_urls import public_url_for
from vcpay.transactions import commit_claim

SESSION_KEY = "stripe_oauth_nonces"
# A few tabs at once are fine; older attempts fall out of the session.
NONCES_KEPT = 5
SALT = "vcpay.stripe-oauth-state"


class LinkingFailed(Exception):
    """Linking stopped; nothing was stored. ``clinic_id`` says where to send the person."""

    def __init__(self, message: str, clinic_id: int | None = None):
        super().__init__(message)
        self.message = message
        self.clinic_id = clinic_id


@dataclass(frozen=True)
class Linked:
    link: StripeLink
    shared_with: list[Clinic]  # other clinics of the organisation using the same account


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=SALT)


def callback_url() -> str:
    # Stripe accepts only registered redirect URIs: one address for every clinic.
    return public_url_for("client_payments.stripe_callback")


def start_linking(clinic: Clinic, user: User, stripe_api: StripeApi) -> str:
    """Record an attempt and return the Stripe address to send the person to; the caller
    commits before sending them."""
    nonce = secrets.token_urlsafe(24)
    db.session.add(StripeOAuthAttempt(nonce=nonce, clinic_id=clinic.id, user_id=user.id))
    db.session.flush()
    session[SESSION_KEY] = [*session.get(SESSION_KEY, [])[-(NONCES_KEPT - 1) :], nonce]
    state = _serializer().dumps({"nonce": nonce, "clinic": clinic.id})
    return stripe_api.authorize_url(state, callback_url())


def _read_state(state: str | None) -> dict:
    minutes = current_app.config["STRIPE_OAUTH_STATE_MINUTES"]
    try:
        data = _serializer().loads(state or "", max_age=minutes * 60)
    except SignatureExpired:
        raise LinkingFailed(
            _(
                "The answer from Stripe came back more than %(minutes)s minutes after you "
                "left, so no account was linked. Please use Go to Stripe again.",
                minutes=minutes,
            )
        ) from None
    except BadSignature:
        raise LinkingFailed(
            _(
                "The answer from Stripe could not be checked, so no account was linked. "
                "Please start again with Go to Stripe."
            )
        ) from None
    if not isinstance(data, dict) or not {"nonce", "clinic"} <= data.keys():
        raise LinkingFailed(_("The answer from Stripe could not be checked."))
    return data


def _claim_attempt(nonce: str, clinic_id: int, user: User) -> StripeOAuthAttempt:
    """Use the attempt once: a replayed answer from Stripe finds it used."""
    attempt = db.session.scalar(select(StripeOAuthAttempt).filter_by(nonce=nonce))
    if attempt is not None and attempt.used_at is not None:
        raise _already_used(clinic_id)
    if nonce not in session.get(SESSION_KEY, []):
        raise LinkingFailed(
            _(
                "Linking was started in another browser or sign-in, so no account was "
                "linked. Please use Go to Stripe again from here."
            ),
            clinic_id,
        )
    claimed = db.session.execute(
        update(StripeOAuthAttempt)
        .where(
            StripeOAuthAttempt.nonce == nonce,
            StripeOAuthAttempt.clinic_id == clinic_id,
            StripeOAuthAttempt.user_id == user.id,
            StripeOAuthAttempt.used_at.is_(None),
        )
        .values(used_at=utcnow())
    )
    commit_claim()  # before Stripe is asked: a replay racing this one finds it used
    session[SESSION_KEY] = [n for n in session.get(SESSION_KEY, []) if n != nonce]
    if claimed.rowcount != 1:  # used a moment ago, by a request racing this one
        raise _already_used(clinic_id)
    return db.session.scalar(select(StripeOAuthAttempt).filter_by(nonce=nonce))


def _already_used(clinic_id: int) -> LinkingFailed:
    return LinkingFailed(
        _(
            "This answer from Stripe was already used. If the account is not shown as "
            "linked, please use Go to Stripe again."
        ),
        clinic_id,
    )


def _finish(attempt: StripeOAuthAttempt, outcome: AttemptOutcome, detail: str = "") -> None:
    attempt.outcome = outcome.value
    attempt.detail = detail[:300]


def _fail(attempt: StripeOAuthAttempt, message: str, outcome=AttemptOutcome.FAILED):
    """Drop what this answer began and note why it failed; the caller commits the note."""
    db.session.rollback()
    _finish(attempt, outcome, message)
    return LinkingFailed(message, attempt.clinic_id)


def finish_linking(args: dict[str, str], user: User, stripe_api: StripeApi, may_link) -> Linked:
    """Handle Stripe's redirect back; ``may_link(clinic)`` re-checks the person's rights.
    The caller commits, whether this returns or raises ``LinkingFailed`` (the attempt keeps
    why it failed)."""
    data = _read_state(args.get("state"))
    attempt = _claim_attempt(str(data["nonce"]), int(data["clinic"]), user)
    clinic = attempt.clinic
    may_link(clinic)
    if args.get("error"):
        raise _fail(
            attempt,
            _("Linking was cancelled on Stripe, so no account was linked."),
            AttemptOutcome.DENIED,
        )
    if not clinic.gateway_enabled:
        raise _fail(attempt, _("The Payment Gateway is not switched on for this clinic."))
    if not args.get("code"):
        raise _fail(attempt, _("Stripe sent no authorisation back, so no account was linked."))
    try:
        account_id = stripe_api.exchange_code(args["code"])
        account = stripe_api.retrieve_account(account_id)
    except AuthorisationCodeRejected:
        raise _fail(
            attempt,
            _(
                "Stripe did not accept the authorisation (it had expired or was already "
                "used), so no account was linked. Please use Go to Stripe again."
            ),
        ) from None
    except StripeUnavailable:
        raise _fail(
            attempt,
            _(
                "Stripe could not be reached to finish linking, so no account was linked. "
                "Please try again in a few minutes."
            ),
        ) from None
    except StripeApiError as error:
        raise _fail(
            attempt, _("Stripe refused to link the account: %(why)s", why=error.words)
        ) from None
    return _store_link(attempt, clinic, account, user)


def _store_link(attempt, clinic: Clinic, account, user: User) -> Linked:
    others = [link.clinic for link in live_links_for_account(account.id) if link.clinic != clinic]
    if any(other.organisation_id != clinic.organisation_id for other in others):
        raise _fail(
            attempt,
            _(
                "That Stripe account is already linked to a clinic of another organisation, "
                "so it was not linked here. Please link this clinic's own Stripe account."
            ),
        )
    if account.id in {link.account_id for link in live_links(clinic)}:
        raise _fail(attempt, _already_linked())
    # The clinic's first account takes its payments; later ones are added beside it.
    link = StripeLink(
        clinic=clinic,
        account_id=account.id,
        linked_at=utcnow(),
        linked_by=user,
        is_default=live_link(clinic) is None,
    )
    apply_account(link, account)
    link.name = link.display_name
    db.session.add(link)
    try:
        db.session.flush()
    except IntegrityError:  # another tab linked this account, or a first one, a moment ago
        db.session.rollback()
        same = account.id in {link.account_id for link in live_links(clinic)}
        raise _fail(attempt, _already_linked() if same else _linked_meanwhile()) from None
    record_audit("stripe.linked", clinic, account=account.id, shared_with=[c.id for c in others])
    clinic_tools_changed(clinic)  # an open call's Request Payment is there without a reload
    _finish(attempt, AttemptOutcome.LINKED, account.id)
    return Linked(link, others)


def _already_linked() -> str:
    return _("This clinic is already linked to that Stripe account.")


def _linked_meanwhile() -> str:
    return _(
        "Another account was linked to this clinic at the same moment, so this one was not. "
        "Please use Link another Stripe account again."
    )
