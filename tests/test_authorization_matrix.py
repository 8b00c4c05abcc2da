"""Who gets what from every route: one table, eleven actors, objects of two organisations.

Every rule in the URL map (``static`` aside) has one row per method in ROUTES. A row says how
the path is filled from a place (organisation A's objects, B's, or A's scopes around B's
objects) and what each actor gets back:

- ``visitors``: (anonymous, guest of the call, guest of another call). The guests are
  patients who joined with a link: "guest" joined the place's call, "other guest" another
  call of the same clinic.
- ``own``: (clinician, clinic admin, org admin, telehealth manager) of the place's
  organisation; the clinician and clinic admin work in the clinic of the call.
- ``foreign``: the same four roles of the other organisation: 404, since other
  organisations' pages must not even be shown to exist (vcpay/people/permissions.py).
  ``SAME`` when the route has no organisation in it.
- ``mixed``: for routes naming two objects, what changes when the outer one is A's and the
  inner one B's (A's call with B's payment request): a key only reaches its own objects.

One value stands for every actor of its group. Outcomes are status codes, or ``SIGN_IN``
(a redirect to the sign-in page that comes back here). State-changing routes get valid CSRF
tokens, so the table shows permission decisions; bodies are harmless (a no-op, or a form
refused after the permission check) or the row builds fresh objects for every case. Each
state-changing row is also sent without its token, by someone the table lets through, and
must be refused with nothing written; only rows marked ``signed`` (webhooks) are exempt.

Adding a route: add its Row to ROUTES (copy the nearest one); a route in the URL map without
a row, or a row whose route is gone, fails. The path's values come from a filler, a function
of the world and a place. If the path names a new kind of object, give ``Place`` a field for
it (tests/authorization_world.py) and write a filler; if an allowed request would destroy or
change what other rows use, make the filler build a fresh object per case, as
``fresh_call_id`` does.
"""

import hashlib
import hmac
import json
import re
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from sqlalchemy import select

from tests.authorization_world import (  # noqa: F401 - module fixtures
    STAFF_ROLES,
    VISITORS,
    Actor,
    Place,
    World,
    matrix_app_fixture,
    world_fixture,
)
from tests.stripe_events import event, signed
from vcpay.auth.passwords import reset_token
from vcpay.auth.two_factor import new_secret
from vcpay.client_payments.models import AccountRoute
from vcpay.client_payments.stripe_link import live_link
from vcpay.database import utcnow
from vcpay.errors import CSRF_MESSAGE
from vcpay.extensions import csrf, db
from vcpay.payments.models import PaymentRequest, SavedCard
from vcpay.payments.receipts import receipt_url
from vcpay.payments.saved_card_charges import authentication_url
from vcpay.people.models import ClinicRole, User
from vcpay.people.services import (
    add_clinic_role,
    create_user,
    find_user_by_email,
    open_sign_in_session,
)
from vcpay.teams import invitations
from vcpay.webhooks.models import StripeEvent

# What these tests check happens before or beside any query: SQLite alone runs them.
pytestmark = pytest.mark.any_database

SIGN_IN = "302 to sign-in"
CSRF_REFUSED = "400 CSRF refused"
SAME = "same as own"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}

Outcome = int | str
Filler = Callable[[World, Place], dict[str, Any]]


# How a path's parameters are filled from a place.
def nothing(world: World, place: Place) -> dict:
    return {}


def organisation_id(world: World, place: Place) -> dict:
    return {"organisation_id": place.organisation.id}


def clinic_id(world: World, place: Place) -> dict:
    return {"clinic_id": place.clinic.id}


def call_id(world: World, place: Place) -> dict:
    return {"call_id": place.call.id}


def payment_of_call(world: World, place: Place) -> dict:
    return {"call_id": place.call.id, "request_key": place.payment.request_key}


def payment_id(world: World, place: Place) -> dict:
    return {"payment_id": place.payment.id}


def paid_payment_id(world: World, place: Place) -> dict:
    return {"payment_id": world.paid_payment(place).id}


def request_id(world: World, place: Place) -> dict:
    return {"request_id": place.enablement.id}


def guest_token(world: World, place: Place) -> dict:
    return {"token": place.call.guest_token}


def payment_of_token(world: World, place: Place) -> dict:
    return {"token": place.call.guest_token, "request_key": place.payment.request_key}


# Fillers for routes whose allowed request destroys what it names: a fresh object per case.
def fresh_call_id(world: World, place: Place) -> dict:
    return {"call_id": world.fresh_call(place).id}


def fresh_payment_of_call(world: World, place: Place) -> dict:
    return {"call_id": place.call.id, "request_key": world.fresh_payment(place).request_key}


def rejoined_patient_of_call(world: World, place: Place) -> dict:
    return {"call_id": place.call.id, "participant_id": world.rejoined_patient(place).id}


def paid_receipt_link(world: World, place: Place) -> dict:
    return {"signed": receipt_url(world.paid_payment(place)).rsplit("/", 1)[1]}


def removed_saved_card(world: World, place: Place) -> dict:
    """A card the place's patient saved, already removed: Remove changes nothing. Mixed, it is
    the other organisation's patient's card, asked for through this one's clinic."""
    patient = db.session.merge(place.patient)
    session_id = f"cs_matrix_{patient.id}"
    card = db.session.scalar(select(SavedCard).filter_by(setup_session_id=session_id))
    if card is None:
        now = utcnow()
        card = SavedCard(
            clinic_id=patient.call.clinic_id, call_id=patient.call_id, participant=patient,
            account_id="acct_matrix", customer_id="cus_matrix", setup_url="",
            setup_session_id=session_id, payment_method_id=f"pm_matrix_{patient.id}",
            consent_version="matrix", saved_at=now, removed_at=now, removed_cause="by_admin",
        )  # fmt: skip
        db.session.add(card)
        db.session.commit()
    return {"clinic_id": place.clinic.id, "card_id": card.id}


def paid_off_session_link(world: World, place: Place) -> dict:
    """The emailed link of a saved card's charge of the place's call, already paid."""
    call = db.session.merge(place.call)
    key = f"matrix-off-session-{place.name}"
    request = db.session.scalar(select(PaymentRequest).filter_by(request_key=key))
    if request is None:
        request = PaymentRequest(
            request_key=key, call=call, clinic_id=call.clinic_id, amount=100, currency="aud",
            description="Matrix", updated_at=utcnow(), stripe_account_id="acct_matrix",
            expires_at=utcnow(), off_session=True, state="paid",
        )  # fmt: skip
        db.session.add(request)
        db.session.commit()
    return {"signed": authentication_url(request).rsplit("/", 1)[1]}


def payout_id(world: World, place: Place) -> dict:
    return {"payout_id": world.payout(place).id}


def relinked_spare_clinic_id(world: World, place: Place) -> dict:
    return {"clinic_id": world.relinked_spare(place).id}


def spare_link(world: World, place: Place) -> dict:
    spare = world.relinked_spare(place)
    return {"clinic_id": spare.id, "link_id": live_link(spare).id}


def fresh_route(world: World, place: Place) -> dict:
    """The place's clinician routed to the GP clinic's account, made anew for each case."""
    clinic = db.session.merge(place.clinic)
    clinician = db.session.merge(place.people["clinician"])
    route = db.session.scalar(
        select(AccountRoute).filter_by(clinic_id=clinic.id, clinician_id=clinician.id)
    )
    if route is None:
        route = AccountRoute(clinic=clinic, clinician=clinician, link=live_link(clinic))
        db.session.add(route)
        db.session.commit()
    return {"clinic_id": clinic.id, "route_id": route.id}


# Harmless bodies.
def too_long_title(world: World, place: Place) -> dict:
    return {"clinic_id": place.clinic.id, "title": "x" * 121}


def repeated_payment_request(world: World, place: Place) -> dict:
    """The key of a request already made: a double click, answered with the first request."""
    return {"request_key": place.payment.request_key, "amount": "85.00", "description": "Again"}


def repeated_refund(world: World, place: Place) -> dict:
    """The key of a refund already made: a double click, answered with the first refund."""
    refund = world.refunded_payment(place)
    return {"refund_key": refund.refund_key, "extent": "part", "amount": "1.00", "reason": "Again"}


def the_payer(world: World, place: Place) -> dict:
    return {"person": str(place.patient.id)}


def unknown_clinic_in_request(world: World, place: Place) -> dict:
    return {"clinics-0-clinic_id": "0", "clinics-0-selected": "y", "save_draft": "Save draft"}


def clinicians_fresh_sign_in(world: World, place: Place) -> dict:
    """A sign-in of the place's clinician made for this case: theirs to end, nobody else's."""
    clinician = db.session.merge(place.people["clinician"])
    sign_in, _token = open_sign_in_session(clinician, timedelta(hours=1))
    db.session.commit()
    return {"session_id": sign_in.id}


def fresh_reset_token(world: World, place: Place) -> dict:
    """A live reset link for a person of the place's own, made anew for each case: a reset
    uses its link up (and ends only that person's sign-ins)."""
    email = f"reset-{place.home.lower()}@matrix.example"
    person = find_user_by_email(email) or create_user(email, "Reset Person", "unused passphrase")
    db.session.commit()
    return {"token": reset_token(person)}


def _fresh_person(place: Place) -> User:
    """Someone with no password to speak of, a clinician of the place's GP clinic: made for
    one case, so removing them touches nobody another row uses."""
    email = f"teammate-{secrets.token_hex(6)}@matrix.example"
    person = create_user(email, "Matrix Teammate", "", password_hash="!")
    add_clinic_role(person, place.clinic, ClinicRole.CLINICIAN)
    db.session.commit()
    return person


def fresh_person_of_clinic(world: World, place: Place) -> dict:
    return {"clinic_id": place.clinic.id, "user_id": _fresh_person(place).id}


def fresh_person_of_organisation(world: World, place: Place) -> dict:
    return {"organisation_id": place.organisation.id, "user_id": _fresh_person(place).id}


def clinician_of_clinic(world: World, place: Place) -> dict:
    return {"clinic_id": place.clinic.id, "user_id": place.people["clinician"].id}


def _fresh_invitation(place: Place) -> invitations.Invited:
    email = f"invitee-{secrets.token_hex(6)}@matrix.example"
    invited = invitations.invite(email, place.organisation, "clinician", place.clinic)
    db.session.commit()
    return invited


def fresh_invitation_id(world: World, place: Place) -> dict:
    return {"invitation_id": _fresh_invitation(place).invitation.id}


def fresh_invitation_token(world: World, place: Place) -> dict:
    return {"token": _fresh_invitation(place).link.rsplit("/", 1)[1]}


def fresh_two_factor_person(world: World, place: Place) -> dict:
    """A clinician of the place's clinic with two-factor on, made for each case: a reset ends
    their sign-ins and turns it off."""
    person = create_user(
        f"two-factor-{secrets.token_hex(6)}@matrix.example", "Two Factor", "", password_hash="-"
    )
    add_clinic_role(person, db.session.merge(place.clinic), ClinicRole.CLINICIAN)
    person.two_factor_secret, person.two_factor_enabled_at = new_secret(), utcnow()
    db.session.commit()
    return {"user_id": person.id}


def unsigned(world: World, place: Place) -> bytes:
    return b'{"id": "evt_unsigned", "issue": {"key": "PAY-1"}}'


def form(**fields: str) -> Filler:
    return lambda world, place: fields


@dataclass(frozen=True)
class Row:
    method: str
    rule: str
    params: Filler = nothing
    visitors: Outcome | tuple = SIGN_IN  # anonymous, guest, other guest
    own: Outcome | tuple = 200  # clinician, clinic admin, org admin, manager
    foreign: Outcome | tuple = 404
    mixed: dict = field(default_factory=dict)  # overrides for A's scopes around B's objects
    body: Filler | None = None
    signed: bool = False  # a webhook: its signature stands in for a CSRF token
    # Ends the sign-in it is sent with (on the server too): each case signs in afresh.
    fresh_sign_in: bool = False
    # Ends every other sign-in of the person: each case signs in afresh, and that new browser
    # is the actor's from then on.
    ends_other_sign_ins: bool = False

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"

    def expected(self, actor: Actor, place: Place) -> Outcome:
        spec = {"visitors": self.visitors, "own": self.own, "foreign": self.foreign}
        if place.name != place.home:
            spec.update(self.mixed)
        if actor.role in VISITORS:
            return _pick(spec["visitors"], VISITORS.index(actor.role))
        column = "own" if actor.organisation == place.home else "foreign"
        value = spec["own"] if spec[column] == SAME else spec[column]
        return _pick(value, STAFF_ROLES.index(actor.role))


def _pick(value: Outcome | tuple, index: int) -> Outcome:
    return value[index] if isinstance(value, tuple) else value


ORGANISATION_ADMINS = (403, 403, 200, 200)
ORGANISATION_ADMINS_REFUSED_FORM = (403, 403, 400, 400)
CLINICIANS = (200, 403, 403, 403)  # clinician, clinic admin, org admin, manager
ADMINS = (403, 200, 200, 200)
ADMINS_REDIRECTED = (403, 303, 303, 303)
GUEST_ONLY = (403, 200, 403)  # anonymous, guest, other guest
NOBODY_ON_MIXED = {"visitors": 404, "own": 404}

ROUTES = [
    # Home and organisation pages, the language switch.
    Row("GET", "/", foreign=SAME),
    Row("GET", "/organisations/<int:organisation_id>", organisation_id),
    Row("POST", "/language", visitors=302, own=302, foreign=SAME, body=form(language="xx")),
    # Your settings: payment notices are offered to whoever administers a clinic; saving
    # them is refused to anyone else (the box unticked: nothing changes).
    Row("GET", "/settings", foreign=SAME),
    Row("POST", "/settings", own=(403, 303, 303, 303), foreign=SAME),
    # Your sessions: each person sees and ends only their own sign-ins; the row's session is
    # the place's clinician's, so everyone else is told it does not exist.
    Row("GET", "/settings/sessions", foreign=SAME),
    Row("POST", "/settings/sessions/<int:session_id>/end", clinicians_fresh_sign_in,
        own=(303, 404, 404, 404)),
    Row("POST", "/settings/sessions/end-others", own=303, foreign=SAME, ends_other_sign_ins=True),
    # Signing in and out.
    Row("GET", "/sign-in", visitors=200, own=302, foreign=SAME),
    # No password (refused before any hashing); signed-in people are sent on.
    Row("POST", "/sign-in", visitors=400, own=302, foreign=SAME,
        body=form(email="nobody@example.org", password="")),
    Row("POST", "/sign-out", own=302, foreign=SAME, fresh_sign_in=True),
    # Passwords: asking for a reset link answers everyone alike; a live link lets whoever holds
    # it choose its person's password (a good one: 303 to sign in). Changing one's own password
    # needs a sign-in; a wrong current password is refused after the permission check.
    Row("GET", "/forgot-password", visitors=200, foreign=SAME),
    Row("POST", "/forgot-password", visitors=200, foreign=SAME,
        body=form(email="nobody@example.org")),
    Row("GET", "/reset-password/<token>", fresh_reset_token, visitors=200, foreign=SAME),
    Row("POST", "/reset-password/<token>", fresh_reset_token, visitors=303, own=303,
        foreign=SAME, body=form(new_password="otter kettle ribbon lantern",
                                confirm="otter kettle ribbon lantern")),
    # Two-factor sign-in. The steps after the password need its signed marker, which nobody
    # here holds: back to the sign-in page (no "next"), whoever asks.
    Row("GET", "/sign-in/two-factor", visitors=302, own=302, foreign=SAME),
    Row("POST", "/sign-in/two-factor", visitors=302, own=302, foreign=SAME,
        body=form(code="000000")),
    Row("GET", "/sign-in/two-factor/enrol", visitors=302, own=302, foreign=SAME),
    Row("POST", "/sign-in/two-factor/enrol", visitors=302, own=302, foreign=SAME,
        body=form(code="000000")),
    # One's own two-factor settings (everyone here has it off, and may turn it on): a wrong
    # code and a wrong password are refused after the permission check; no codes to show or
    # make while it is off.
    Row("GET", "/settings/two-factor", foreign=SAME),
    Row("GET", "/settings/two-factor/enrol", foreign=SAME),
    Row("POST", "/settings/two-factor/enrol", own=400, foreign=SAME, body=form(code="000000")),
    Row("GET", "/settings/two-factor/recovery-codes", own=302, foreign=SAME),
    Row("POST", "/settings/two-factor/recovery-codes", own=303, foreign=SAME),
    Row("POST", "/settings/two-factor/turn-off", own=400, foreign=SAME,
        body=form(password="not the password")),
    # An admin resets the two-factor sign-in of a person of their clinic or organisation.
    Row("POST", "/people/<int:user_id>/two-factor/reset", fresh_two_factor_person,
        own=ADMINS_REDIRECTED),
    Row("GET", "/settings/password", foreign=SAME),
    Row("POST", "/settings/password", own=400, foreign=SAME,
        body=form(current_password="not the password", new_password="otter kettle ribbon lantern",
                  confirm="otter kettle ribbon lantern")),
    # Teams: an organisation's team (clinics, admins, telehealth manager) is its organisation
    # admins'; a clinic's team is also its clinic admins'. Forms are sent empty (refused
    # after the permission check); removals and invitations are made fresh for each case.
    Row("GET", "/team", own=ADMINS, foreign=SAME),
    Row("GET", "/organisations/<int:organisation_id>/team", organisation_id,
        own=ORGANISATION_ADMINS),
    Row("POST", "/organisations/<int:organisation_id>/team/invitations", organisation_id,
        own=ORGANISATION_ADMINS_REFUSED_FORM, body=form(email="")),
    Row("POST", "/organisations/<int:organisation_id>/clinics", organisation_id,
        own=ORGANISATION_ADMINS_REFUSED_FORM, body=form(name="")),
    Row("POST", "/organisations/<int:organisation_id>/telehealth-manager", organisation_id,
        own=ORGANISATION_ADMINS_REFUSED_FORM, body=form(person="")),
    Row("POST", "/organisations/<int:organisation_id>/people/<int:user_id>/remove",
        fresh_person_of_organisation, own=(403, 403, 303, 303)),
    Row("POST", "/clinics/<int:clinic_id>/rename", clinic_id,
        own=ORGANISATION_ADMINS_REFUSED_FORM, body=form(name="")),
    Row("GET", "/clinics/<int:clinic_id>/team", clinic_id, own=ADMINS),
    Row("POST", "/clinics/<int:clinic_id>/team/invitations", clinic_id,
        own=(403, 400, 400, 400), body=form(email="")),
    Row("POST", "/clinics/<int:clinic_id>/people/<int:user_id>/role", clinician_of_clinic,
        own=(403, 400, 400, 400), body=form(role="")),
    Row("POST", "/clinics/<int:clinic_id>/people/<int:user_id>/remove", fresh_person_of_clinic,
        own=ADMINS_REDIRECTED),
    Row("POST", "/invitations/<int:invitation_id>/resend", fresh_invitation_id,
        own=ADMINS_REDIRECTED),
    Row("POST", "/invitations/<int:invitation_id>/revoke", fresh_invitation_id,
        own=ADMINS_REDIRECTED),
    # An invitation's link is its key, whoever holds it: accepting makes the account and
    # signs that browser in as it.
    Row("GET", "/invitations/<token>", fresh_invitation_token, visitors=200, own=200,
        foreign=SAME),
    Row("POST", "/invitations/<token>", fresh_invitation_token, visitors=303, own=303,
        foreign=SAME, body=form(name="Matrix Newcomer", new_password="otter kettle ribbon lantern",
                                confirm="otter kettle ribbon lantern")),
    # Client Payments: admins of the clinic or its organisation.
    Row("GET", "/client-payments/", foreign=SAME),
    Row("GET", "/client-payments/clinics/<int:clinic_id>", clinic_id, own=ADMINS),
    # Already linked: another account may be linked beside it (off to Stripe).
    Row("POST", "/client-payments/clinics/<int:clinic_id>/stripe/connect", clinic_id,
        own=ADMINS_REDIRECTED),
    # No state from Stripe: refused for everyone who is signed in.
    Row("GET", "/client-payments/stripe/callback", own=303, foreign=SAME),
    Row("POST", "/client-payments/clinics/<int:clinic_id>/stripe/refresh", clinic_id,
        own=ADMINS_REDIRECTED),
    Row("GET", "/client-payments/clinics/<int:clinic_id>/stripe/remove", clinic_id, own=ADMINS),
    Row("POST", "/client-payments/clinics/<int:clinic_id>/stripe/remove",
        relinked_spare_clinic_id, own=ADMINS_REDIRECTED),
    # One of the clinic's several accounts, by its link's id.
    Row("POST", "/client-payments/clinics/<int:clinic_id>/stripe/<int:link_id>/refresh",
        spare_link, own=ADMINS_REDIRECTED),
    Row("GET", "/client-payments/clinics/<int:clinic_id>/stripe/<int:link_id>/remove", spare_link,
        own=ADMINS),
    Row("POST", "/client-payments/clinics/<int:clinic_id>/stripe/<int:link_id>/remove",
        spare_link, own=ADMINS_REDIRECTED),
    Row("POST", "/client-payments/clinics/<int:clinic_id>/stripe/<int:link_id>/rename",
        spare_link, own=ADMINS_REDIRECTED, body=form(name="Spare account")),
    Row("POST", "/client-payments/clinics/<int:clinic_id>/stripe/<int:link_id>/default",
        spare_link, own=ADMINS_REDIRECTED),
    # No clinician or account chosen: the admin is told so; nothing changes.
    Row("POST", "/client-payments/clinics/<int:clinic_id>/routes", clinic_id,
        own=ADMINS_REDIRECTED),
    Row("POST", "/client-payments/clinics/<int:clinic_id>/routes/<int:route_id>/remove",
        fresh_route, own=ADMINS_REDIRECTED),
    # Payouts: admins of a clinic linked to the payout's Stripe account.
    Row("GET", "/payouts/", own=ADMINS, foreign=SAME),
    Row("GET", "/payouts/<int:payout_id>", payout_id, own=ADMINS),
    Row("GET", "/payouts/<int:payout_id>/export.csv", payout_id, own=ADMINS),
    Row("POST", "/payouts/clinics/<int:clinic_id>/refresh", clinic_id, own=ADMINS_REDIRECTED),
    # Enablement requests. The place's request was approved: acting on it is refused by its
    # state (a redirect with a message) once the permission allows it. The clinic admin's
    # only clinic is on already, so a new request sends them back to the list.
    Row("GET", "/enablement/organisations/<int:organisation_id>/requests", organisation_id,
        own=ADMINS),
    Row("GET", "/enablement/organisations/<int:organisation_id>/requests/new", organisation_id,
        own=(403, 302, 200, 200)),
    Row("POST", "/enablement/organisations/<int:organisation_id>/requests/new",
        organisation_id, own=(403, 302, 400, 400), body=unknown_clinic_in_request),
    # A request is for organisation admins, and clinic admins of the clinics it names.
    Row("GET", "/enablement/requests/<int:request_id>", request_id, own=(404, 200, 200, 200)),
    # Only its requester (the org admin) edits it.
    Row("GET", "/enablement/requests/<int:request_id>/edit", request_id,
        own=(404, 403, 302, 403)),
    Row("POST", "/enablement/requests/<int:request_id>/edit", request_id,
        own=(404, 403, 302, 403)),
    Row("POST", "/enablement/requests/<int:request_id>/endorse", request_id,
        own=(404, 403, 403, 302)),
    Row("POST", "/enablement/requests/<int:request_id>/send-back", request_id,
        own=(404, 403, 403, 302), body=form(reason="")),
    Row("POST", "/enablement/requests/<int:request_id>/withdraw", request_id,
        own=(404, 403, 302, 302)),
    # Calls: the clinic's clinicians only.
    Row("GET", "/calls/", foreign=SAME),
    Row("POST", "/calls/start", own=(303, 403, 403, 403), body=too_long_title),
    Row("GET", "/calls/<int:call_id>", call_id, own=CLINICIANS),
    Row("GET", "/calls/<int:call_id>/panel", call_id, own=CLINICIANS),
    Row("GET", "/calls/<int:call_id>/tools", call_id, own=CLINICIANS),
    Row("GET", "/calls/<int:call_id>/events", call_id, own=CLINICIANS),
    Row("POST", "/calls/<int:call_id>/end", fresh_call_id, own=(303, 403, 403, 403)),
    # A key of another organisation's request is refused, not answered with that request:
    # back to the call screen (303), which says why (tests/test_payment_requests.py).
    Row("GET", "/calls/<int:call_id>/payment-requests", call_id, own=(303, 403, 403, 403)),
    Row("POST", "/calls/<int:call_id>/payment-requests", call_id, own=(303, 403, 403, 403),
        body=repeated_payment_request, mixed={"own": (303, 403, 403, 403)}),
    Row("POST", "/calls/<int:call_id>/payment-requests/<request_key>/cancel",
        fresh_payment_of_call, own=(303, 403, 403, 403), mixed={"own": (404, 403, 403, 403)}),
    Row("POST", "/calls/<int:call_id>/payment-requests/<request_key>/acknowledge",
        payment_of_call, own=CLINICIANS, mixed={"own": (404, 403, 403, 403)}),
    # "This is Pat Citizen": a patient who rejoined, recognised by a clinician of the call;
    # another call's participant is not found.
    Row("POST", "/calls/<int:call_id>/participants/<int:participant_id>/recognise",
        rejoined_patient_of_call, own=(303, 403, 403, 403), body=the_payer,
        mixed={"own": (404, 403, 403, 403)}),
    # Waive the fee before joining: a clinician of the call (the place's call has no fee, so
    # nothing is waived); another call's participant is not found.
    Row("POST", "/calls/<int:call_id>/participants/<int:participant_id>/waive-fee",
        rejoined_patient_of_call, own=(303, 403, 403, 403),
        mixed={"own": (404, 403, 403, 403)}),
    # Refunds: admins of the payment's clinic and organisation, never its clinician. The
    # place's payment is not paid yet: the page says so. The post repeats a refund's key.
    Row("GET", "/payments/<int:payment_id>/refund", payment_id, own=ADMINS),
    Row("POST", "/payments/<int:payment_id>/refund", paid_payment_id, own=ADMINS_REDIRECTED,
        body=repeated_refund),
    # The patient's pages: the link is the key to one call; the joined patient's session is
    # what the call's live pages and Pay now need.
    Row("GET", "/join/<token>", guest_token, visitors=200, own=200, foreign=SAME),
    # No name given: refused, except for the patient already in the call, who sees it.
    Row("POST", "/join/<token>", guest_token, visitors=(400, 200, 400), own=400, foreign=SAME,
        body=form(display_name="")),
    Row("GET", "/join/<token>/panel", guest_token, visitors=GUEST_ONLY, own=403, foreign=SAME),
    Row("GET", "/join/<token>/events", guest_token, visitors=GUEST_ONLY, own=403, foreign=SAME),
    # Asked of the patient who joined: only they see Pay now and are sent to Checkout.
    Row("GET", "/join/<token>/payments/<request_key>/pay", payment_of_token,
        visitors=(403, 200, 403), own=403, foreign=SAME, mixed=NOBODY_ON_MIXED),
    Row("POST", "/join/<token>/payments/<request_key>/pay", payment_of_token,
        visitors=(403, 303, 403), own=403, foreign=SAME, mixed=NOBODY_ON_MIXED),
    # Where Stripe sends the payer back: the payment's page is the payer's alone.
    Row("GET", "/join/<token>/payments/<request_key>/done", payment_of_token,
        visitors=(403, 200, 403), own=403, foreign=SAME, mixed=NOBODY_ON_MIXED),
    Row("GET", "/join/<token>/payments/<request_key>/left", payment_of_token,
        visitors=(403, 200, 403), own=403, foreign=SAME, mixed=NOBODY_ON_MIXED),
    # The pay-first page: for a call without a fee (the place's), or anyone who has not joined
    # the call in this browser, the call's own page (which shows the call or asks for a name).
    # Checkout's return pages answer only for the call's fee payments: the place's is not one.
    Row("GET", "/join/<token>/fee", guest_token, visitors=303, own=303, foreign=SAME),
    Row("POST", "/join/<token>/fee", guest_token, visitors=303, own=303, foreign=SAME),
    Row("GET", "/join/<token>/fee/<request_key>/done", payment_of_token, visitors=404, own=404,
        foreign=SAME, mixed=NOBODY_ON_MIXED),
    Row("GET", "/join/<token>/fee/<request_key>/left", payment_of_token, visitors=404, own=404,
        foreign=SAME, mixed=NOBODY_ON_MIXED),
    # The receipt email's own link is the key to that receipt, whoever holds it.
    Row("GET", "/join/receipts/<signed>", paid_receipt_link, visitors=200, own=200,
        foreign=SAME),
    # Saved cards: the offer to save one is for a joined patient of a clinic that allows it
    # (the place's does not: back to the call). The emailed link of a charge that needs its
    # card's holder is the key to that one payment (paid already: nothing to confirm).
    Row("GET", "/join/<token>/save-card", guest_token, visitors=303, own=303, foreign=SAME),
    Row("POST", "/join/<token>/save-card", guest_token, visitors=303, own=303, foreign=SAME),
    Row("GET", "/join/<token>/save-card/done", guest_token, visitors=303, own=303,
        foreign=SAME),
    Row("GET", "/pay/confirm/<signed>", paid_off_session_link, visitors=200, own=200,
        foreign=SAME),
    Row("POST", "/pay/confirm/<signed>", paid_off_session_link, visitors=200, own=200,
        foreign=SAME),
    Row("GET", "/pay/confirm/<signed>/done", paid_off_session_link, visitors=303, own=303,
        foreign=SAME),
    # The clinic admin's setting and list; Remove of a card removed already changes nothing.
    Row("GET", "/client-payments/clinics/<int:clinic_id>/saved-cards", clinic_id, own=ADMINS),
    Row("POST", "/client-payments/clinics/<int:clinic_id>/saved-cards/setting", clinic_id,
        own=ADMINS_REDIRECTED, body=form(allowed="no")),
    Row("POST", "/client-payments/clinics/<int:clinic_id>/saved-cards/<int:card_id>/remove",
        removed_saved_card, own=ADMINS_REDIRECTED, mixed={"own": (403, 404, 404, 404)}),
    # Charge saved card: the call's clinician; a form naming no card is refused.
    Row("POST", "/calls/<int:call_id>/saved-cards/charge", call_id, own=(400, 403, 403, 403)),
    # Payments: everyone with a role in a clinic opens the list and the export (a clinician
    # sees the requests they made, which include the place's); the place's request is its
    # clinician's. Its receipt is for admins to send again; the request is unpaid, so they
    # are told there is none yet. The time zone is the clinic admins' (saved as it was).
    Row("GET", "/payments/", foreign=SAME),
    Row("GET", "/payments/export.csv", foreign=SAME),
    Row("GET", "/payments/<int:payment_id>", payment_id),
    Row("POST", "/payments/<int:payment_id>/receipt", payment_id, own=ADMINS_REDIRECTED,
        body=form(email="pat@example.org", resend_key="k" * 24)),
    Row("GET", "/payments/clinics/<int:clinic_id>/time-zone", clinic_id, own=ADMINS),
    # The audit log: read only, for the admins of an organisation or a clinic (each sees their
    # own scope's entries: tests/test_audit_page.py); a clinician is refused.
    Row("GET", "/audit/", own=ADMINS, foreign=SAME),
    Row("GET", "/audit/export.csv", own=ADMINS, foreign=SAME),
    Row("POST", "/payments/clinics/<int:clinic_id>/time-zone", clinic_id,
        own=ADMINS_REDIRECTED, body=form(time_zone="Australia/Sydney")),
    # Health, and the signed webhooks (unsigned here: refused whoever sends them).
    Row("GET", "/healthz", visitors=200, own=200, foreign=SAME),
    Row("GET", "/readyz", visitors=200, own=200, foreign=SAME),
    # Metrics: with no VCPAY_METRICS_TOKEN there are none, whoever asks; a sign-in is no token
    # (with one set, 401 without it: tests/test_observability.py).
    Row("GET", "/metrics", visitors=404, own=404, foreign=SAME),
    Row("POST", "/webhooks/stripe", visitors=400, own=400, foreign=SAME, body=unsigned,
        signed=True),
    Row("POST", "/webhooks/jira", visitors=400, own=400, foreign=SAME, body=unsigned,
        signed=True),
]  # fmt: skip

PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def path_of(rule: str, values: dict[str, Any]) -> str:
    return PARAMETER.sub(lambda m: quote(str(values[m.group(1)]), safe=""), rule)


def request_for(world: World, row: Row, place: Place) -> tuple[str, dict | bytes]:
    """The path and body of ``row`` at ``place`` (building fresh objects where the row does)."""
    path = path_of(row.rule, row.params(world, place))
    return path, row.body(world, place) if row.body else {}


def send(world: World, actor: Actor, method: str, path: str, body, with_csrf: bool = True):
    """One request from ``actor``'s browser: a fresh client carrying its session."""
    client = world.app.test_client()
    if actor.cookie:
        client.set_cookie(world.app.config["SESSION_COOKIE_NAME"], actor.cookie)
    if isinstance(body, bytes):
        response = client.open(path, method=method, data=body, content_type="application/json")
    elif method in STATE_CHANGING:
        fields = {**body, "csrf_token": actor.csrf} if with_csrf else body
        response = client.open(path, method=method, data=fields)
    else:
        response = client.open(path, method=method)
    if response.mimetype != "text/event-stream":  # a stream would run on: never read it
        response.get_data()
    response.close()
    return response


def outcome(response) -> Outcome:
    if response.status_code == 302:
        location = urlsplit(response.location)
        if location.path == "/sign-in" and "next" in parse_qs(location.query):
            return SIGN_IN
    if response.status_code == 400 and str(CSRF_MESSAGE) in response.get_data(as_text=True):
        return CSRF_REFUSED
    return response.status_code


def places_for(world: World, row: Row) -> list[Place]:
    names = ["A", "B", "A+B"] if row.mixed else ["A", "B"]
    return [world.places[name] for name in names]


@pytest.mark.parametrize("row", ROUTES, ids=str)
def test_every_actor_gets_what_the_table_says(world, row):
    wrong = []
    for place in places_for(world, row):
        for actor in world.actors_for(place):
            sender = actor
            if row.fresh_sign_in or row.ends_other_sign_ins:
                sender = world.signed_in_again(actor)
            path, body = request_for(world, row, place)
            response = send(world, sender, row.method, path, body)
            if row.ends_other_sign_ins:
                actor.cookie, actor.csrf = sender.cookie, sender.csrf
            expected, got = row.expected(actor, place), outcome(response)
            if got != expected:
                wrong.append(f"  {actor.label}, {place.name}'s {path}: {got}, expected {expected}")
    assert not wrong, f"{row}:\n" + "\n".join(wrong)


def test_every_route_in_the_url_map_has_exactly_one_row(matrix_app):
    routes = {
        (method, rule.rule)
        for rule in matrix_app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    rows = Counter((row.method, row.rule) for row in ROUTES)
    problems = [
        *(f"no row for {method} {rule}" for method, rule in sorted(routes - rows.keys())),
        *(
            f"a row for {m} {r}, which the URL map no longer has"
            for m, r in sorted(rows.keys() - routes)
        ),
        *(f"{count} rows for {m} {r}" for (m, r), count in rows.items() if count > 1),
    ]
    assert not problems, "ROUTES is out of step with the URL map:\n  " + "\n  ".join(problems)


# CSRF: every state-changing route refuses a request without its token, and writes nothing.


def everything_stored() -> dict[str, list[str]]:
    db.session.rollback()  # read what the requests committed
    return {
        table.name: sorted(repr(tuple(r)) for r in db.session.execute(select(table)))
        for table in db.metadata.sorted_tables
    }


def allowed_actor(world: World, row: Row, place: Place) -> Actor:
    """The first of the place's own staff, then of the visitors, whose request the table
    says goes through (a 2xx or 3xx other than to sign in, or a form refused after the
    permission check: a 400 that is no CSRF refusal)."""
    actors = world.actors_for(place)
    own_staff = [a for a in actors if a.organisation == place.home]
    visitors = [a for a in actors if a.role in VISITORS]
    for actor in own_staff + visitors:
        expected = row.expected(actor, place)
        if expected != SIGN_IN and isinstance(expected, int) and expected <= 400:
            return actor
    raise AssertionError(f"The table lets nobody through {row}")


FORMS = [row for row in ROUTES if row.method in STATE_CHANGING and not row.signed]


@pytest.mark.parametrize("row", FORMS, ids=str)
def test_a_state_changing_route_refuses_a_request_without_its_csrf_token(world, row):
    place = world.places["A"]
    actor = allowed_actor(world, row, place)
    if row.fresh_sign_in or row.ends_other_sign_ins:
        actor = world.signed_in_again(actor)
    path, body = request_for(world, row, place)
    before = everything_stored()
    response = send(world, actor, row.method, path, body, with_csrf=False)
    assert outcome(response) == CSRF_REFUSED, f"{actor.label}: {response.status_code}"
    assert everything_stored() == before


def test_only_the_signed_webhooks_go_without_a_csrf_token(matrix_app):
    signed_rows = {row.rule for row in ROUTES if row.signed}
    signed_views = {
        f"{view.__module__}.{view.__name__}"
        for rule in matrix_app.url_map.iter_rules()
        if rule.rule in signed_rows
        for view in [matrix_app.view_functions[rule.endpoint]]
    }
    # Flask-WTF keeps its exemptions by view name; nothing else (no blueprint) may be exempt.
    assert csrf._exempt_views == signed_views, "only signed webhooks may skip the CSRF check"
    assert not csrf._exempt_blueprints


def test_webhooks_refuse_unsigned_bodies_and_take_signed_ones_without_csrf(world):
    client = world.app.test_client()
    before = everything_stored()
    for path in ("/webhooks/stripe", "/webhooks/jira"):
        refused = client.post(
            path, data=b'{"issue": {"key": "PAY-1"}}', content_type="application/json"
        )
        assert refused.status_code == 400, path
        assert "signature" in refused.get_json()["error"].lower(), path
        assert str(CSRF_MESSAGE) not in refused.get_data(as_text=True)
    assert everything_stored() == before

    stripe_event = event("account.updated", account="acct_matrix")
    payload, header = signed(stripe_event)
    taken = client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert taken.status_code == 200, taken.get_data(as_text=True)
    assert db.session.scalar(select(StripeEvent).filter_by(event_id=stripe_event["id"]))

    body = json.dumps({"issue": {"key": "PAY-404"}}).encode()
    secret = world.app.config["JIRA_WEBHOOK_SECRET"].encode()
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    nudged = client.post(
        "/webhooks/jira",
        data=body,
        headers={"X-Hub-Signature": f"sha256={digest}", "Content-Type": "application/json"},
    )
    assert nudged.status_code == 200, nudged.get_data(as_text=True)
    assert nudged.get_json() == {"key": "PAY-404", "queued": False}
