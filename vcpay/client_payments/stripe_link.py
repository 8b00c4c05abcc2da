"""Live Stripe links: finding them (the clinic's default, the one a clinician's payments go
to), refreshing what they show, and removing them."""

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app
from flask_babel import gettext as _
from sqlalchemy import delete, select, update

from vcpay.audit.services import record_audit
from vcpay.calls.services import clinic_tools_changed
from vcpay.client_payments.models import AccountRoute, LinkState, RemovalCause, StripeLink
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.integrations.stripe_errors import AccountNotConnected, StripeRefused
from vcpay.integrations.stripe_values import AccountSummary
from vcpay.people.models import Clinic, User

# What settles whatever depends on a removed link (the clinic's open payment requests), in
# the removing transaction and while vcpay may still act for the account.
Settle = Callable[[StripeLink, StripeApi], None]
EXTENSION = "stripe_link_removed"


def when_link_removed(app: Flask, settle: Settle) -> None:
    """Wire, from the factory, what a link's removal settles in the same commit."""
    app.extensions.setdefault(EXTENSION, []).append(settle)


def _settle_what_depends_on(link: StripeLink, stripe_api: StripeApi) -> None:
    for settle in current_app.extensions.get(EXTENSION, ()):
        settle(link, stripe_api)


def live_links(clinic: Clinic) -> list[StripeLink]:
    """The clinic's live links, its default first, then in the order they were linked."""
    return list(
        db.session.scalars(
            select(StripeLink)
            .filter_by(clinic_id=clinic.id, state=LinkState.LINKED.value)
            .order_by(StripeLink.is_default.desc(), StripeLink.id)
        )
    )


def live_link(clinic: Clinic) -> StripeLink | None:
    """The clinic's default link: where its payments go unless their clinician is routed to
    another account (``link_for``). Should a moment leave no live link marked default, the
    oldest live one stands in, so payments never stop while the clinic has an account."""
    return db.session.scalar(
        select(StripeLink)
        .filter_by(clinic_id=clinic.id, state=LinkState.LINKED.value)
        .order_by(StripeLink.is_default.desc(), StripeLink.id)
        .limit(1)
    )


def link_for(clinic: Clinic, clinician: User | None) -> StripeLink | None:
    """The link a payment asked for by ``clinician`` in ``clinic`` is made on: the account
    the clinician is routed to while it is live, else the clinic's default. Everything that
    takes a payment (Request Payment, fees paid before the call, saved cards) asks this."""
    if clinician is not None:
        routed = db.session.scalar(
            select(StripeLink)
            .join(AccountRoute, AccountRoute.link_id == StripeLink.id)
            .where(
                AccountRoute.clinic_id == clinic.id,
                AccountRoute.clinician_id == clinician.id,
                StripeLink.clinic_id == clinic.id,
                StripeLink.state == LinkState.LINKED.value,
            )
        )
        if routed is not None:
            return routed
    return live_link(clinic)


def live_links_for_account(account_id: str) -> list[StripeLink]:
    return list(
        db.session.scalars(
            select(StripeLink)
            .filter_by(account_id=account_id, state=LinkState.LINKED.value)
            .order_by(StripeLink.id)
        )
    )


def apply_account(link: StripeLink, account: AccountSummary) -> None:
    """Copy what Stripe says of the account onto the link, for the page to show."""
    link.display_name = account.display_name[:200]
    link.country = account.country[:2]
    link.email = account.email[:254]
    link.charges_enabled = account.charges_enabled
    link.payouts_enabled = account.payouts_enabled
    link.details_submitted = account.details_submitted
    link.requirements_due = account.requirements_due
    link.disabled_reason = account.disabled_reason
    link.refreshed_at = utcnow()


def refresh_links(account_id: str, stripe_api: StripeApi) -> list[StripeLink]:
    """Read the account now and update every live link to it; order of events does not matter."""
    links = live_links_for_account(account_id)
    if links:
        account = stripe_api.retrieve_account(account_id)
        for link in links:
            could_charge = link.charges_enabled
            apply_account(link, account)
            if link.charges_enabled != could_charge:
                clinic_tools_changed(link.clinic)
    return links


@dataclass(frozen=True)
class Handover:
    """Where a removed link's routes go (another live link of the clinic, or None: the
    clinic's default) and which live link becomes the default if it was (None: the oldest)."""

    routes_to: StripeLink | None = None
    default: StripeLink | None = None


def _mark_removed(
    link: StripeLink,
    cause: RemovalCause,
    actor: User | None,
    stripe_api: StripeApi,
    handover: Handover | None = None,
) -> bool:
    """Remove the link unless another process removed it first (an admin's Remove and
    Stripe's disconnection event can arrive together), hand its routes and its default over
    (``handover``), and settle what depends on it; True if this one did."""
    was_default = link.is_default
    removed = db.session.execute(
        update(StripeLink)
        .where(StripeLink.id == link.id, StripeLink.state == LinkState.LINKED.value)
        .values(
            state=LinkState.REMOVED.value,
            removed_at=utcnow(),
            removed_by_id=actor.id if actor else None,
            removal_cause=cause.value,
            is_default=False,
        )
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(link)
    if removed.rowcount != 1:
        return False
    record_audit("stripe.removed", link.clinic, actor=actor, account=link.account_id, cause=cause)
    _hand_over(link, handover or Handover(), was_default, actor)
    _settle_what_depends_on(link, stripe_api)
    clinic_tools_changed(link.clinic)
    return True


def _hand_over(link: StripeLink, handover: Handover, was_default: bool, actor) -> None:
    routes = AccountRoute.link_id == link.id
    target = handover.routes_to
    if target is not None and target.is_live and target.clinic_id == link.clinic_id:
        db.session.execute(update(AccountRoute).where(routes).values(link_id=target.id))
    else:
        # Their payments go to the clinic's default, as for any clinician with no route.
        db.session.execute(delete(AccountRoute).where(routes))
    if not was_default:
        return
    chosen = handover.default
    candidates = [chosen] if chosen is not None and chosen.clinic_id == link.clinic_id else []
    for candidate in [*candidates, *live_links(link.clinic)]:
        promoted = db.session.execute(
            update(StripeLink)
            .where(StripeLink.id == candidate.id, StripeLink.state == LinkState.LINKED.value)
            .values(is_default=True)
            .execution_options(synchronize_session=False)
        )
        if promoted.rowcount == 1:
            db.session.refresh(candidate)
            record_audit(
                "stripe.default_changed",
                link.clinic,
                actor=actor,
                account=candidate.account_id,
                before=link.account_id,
            )
            return


def remove_link(
    link: StripeLink, actor: User, stripe_api: StripeApi, handover: Handover | None = None
) -> list[Clinic]:
    """Unlink the account from the clinic, handing its routes and its default over. The
    account is disconnected from vcpay at Stripe unless another clinic of the organisation
    still uses it; returns those clinics. The caller commits."""
    still_using = [
        other.clinic for other in live_links_for_account(link.account_id) if other != link
    ]
    # First what depends on the link (open payment pages are closed while vcpay still has
    # access), then Stripe; if Stripe refuses, the caller rolls all of it back.
    if not _mark_removed(link, RemovalCause.BY_ADMIN, actor, stripe_api, handover):
        return []  # removed a moment ago: Stripe's word of a disconnection, or another tab
    if not still_using:
        _deauthorize(link.account_id, stripe_api)
    return still_using


def _deauthorize(account_id: str, stripe_api: StripeApi) -> None:
    try:
        stripe_api.deauthorize(account_id)
    except AccountNotConnected:
        # Already disconnected (from the clinic's dashboard, say) -- unless Stripe still
        # lets vcpay act for the account, which means something else is wrong.
        try:
            stripe_api.retrieve_account(account_id)
        except AccountNotConnected:
            return
        raise StripeRefused(
            _("Stripe would not disconnect the account; please check vcpay's Stripe settings.")
        ) from None


def account_disconnected(account_id: str, stripe_api: StripeApi) -> list[StripeLink]:
    """Stripe says the account left vcpay. Believe it only if Stripe refuses vcpay access now:
    a late event from an earlier disconnection must not undo a newer link."""
    links = live_links_for_account(account_id)
    if not links:
        return []
    try:
        stripe_api.retrieve_account(account_id)
    except AccountNotConnected:
        return [
            link for link in links if _mark_removed(link, RemovalCause.IN_STRIPE, None, stripe_api)
        ]
    return []
