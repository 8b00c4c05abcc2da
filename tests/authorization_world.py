"""Two organisations built once per module, and the eleven people who knock on every route.

Organisation A is the demo (``seed_demo``); B is its twin made with the test factories. Each
has a telehealth manager, another organisation admin, and a clinic admin and a clinician of
its GP clinic; in that clinic a linked Stripe account, an open call with a joined patient and
a payment request asked of that patient, and a second call with a patient of its own. Each
also has an approved enablement request (the one that switched its GP clinic on), a clinic
with the gateway off (something left to request) and a spare linked clinic whose link the
matrix may remove without touching anything else.

Actors are browser sessions: a session cookie and the CSRF token that goes with it. Every
request starts a fresh client from them, so signing out or a flash message in one request
never leaks into the next.
"""

import secrets
from dataclasses import dataclass, field, replace

import pytest
from sqlalchemy import select

from sandbox.stripe.control_client import StripeControl
from tests import factories
from tests.conftest import ServerLikeClient, _empty_tables, csrf_token, sign_in
from tests.stripe_standin import link_clinic
from vcpay import create_app
from vcpay.calls.models import Call, Participant
from vcpay.calls.services import join_as_patient, start_call
from vcpay.client_payments.stripe_link import live_link
from vcpay.database import utcnow
from vcpay.enablement.models import EnablementRequest, RequestedClinic, RequestState
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi, forget_clients
from vcpay.payments import refunds, requesting, transitions
from vcpay.payments.models import PaymentRefund, PaymentRequest
from vcpay.payouts.models import Payout
from vcpay.people.demo import DEMO_PASSWORD, seed_demo
from vcpay.people.models import Clinic, ClinicRole, Organisation, User
from vcpay.people.services import add_clinic_role, find_user_by_email

STAFF_ROLES = ("clinician", "clinic_admin", "org_admin", "manager")
VISITORS = ("anonymous", "guest", "other_guest")


@dataclass
class Actor:
    """One browser: who it is, and the session it carries from request to request."""

    role: str  # one of VISITORS or STAFF_ROLES
    organisation: str | None = None  # "A" or "B" for staff
    cookie: str | None = None
    csrf: str = ""

    @property
    def label(self) -> str:
        return f"{self.role} of {self.organisation}" if self.organisation else self.role


@dataclass
class Place:
    """An organisation's objects, or a mix of two: whatever a route's parameters point at."""

    name: str  # "A", "B", or "A+B": A's scopes around B's objects
    home: str  # the organisation whose people are at home here
    organisation: Organisation
    clinic: Clinic  # the GP clinic: gateway on, linked, where the calls are
    spare: Clinic  # gateway on and linked; only the Remove row touches its link
    physio: Clinic  # gateway off: what an organisation admin can still ask for
    call: Call
    other_call: Call
    patient: Participant  # the guest who joined the call
    payment: PaymentRequest  # asked of that patient
    enablement: EnablementRequest
    people: dict[str, User]

    def mixed_with(self, other: "Place") -> "Place":
        """This place's scopes with ``other``'s objects inside them (a payment of another
        organisation's call, asked for through this one's call)."""
        return replace(
            self, name=f"{self.name}+{other.name}", patient=other.patient, payment=other.payment
        )


@dataclass
class World:
    app: object
    stripe: StripeControl
    places: dict[str, Place]
    # Visitors are per place: "guest" is the patient of that place's call.
    visitors: dict[str, dict[str, Actor]]
    staff: list[Actor]
    passwords: dict[str, str] = field(default_factory=dict)
    paid: dict[str, PaymentRequest] = field(default_factory=dict)
    refunded: dict[str, PaymentRefund] = field(default_factory=dict)

    def signed_in_again(self, actor: Actor) -> Actor:
        """The same person in a new browser: a sign-in of its own, for a case that ends one."""
        if actor.role in VISITORS:
            return actor
        place = self.places[actor.organisation]
        return _signed_in(self.app, place, actor.role, self.passwords[actor.organisation])

    def actors_for(self, place: Place) -> list[Actor]:
        return [*self.visitors[place.home].values(), *self.staff]

    def fresh_call(self, place: Place) -> Call:
        call = start_call(place.clinic, place.people["clinician"], "Matrix: a call to end")
        db.session.commit()
        return call

    def fresh_payment(self, place: Place) -> PaymentRequest:
        """A new open request in the call of ``place``'s payment (the inner object)."""
        call = place.payment.call
        clinician = db.session.get(User, call.clinician_id)
        key = secrets.token_urlsafe(18)
        # Each its own description: the same one still open would ask the clinician first.
        description = f"Matrix: a request to cancel ({key[:8]})"
        asked = requesting.PaymentAsked("12.50", description, key, requesting.ANYONE)
        made = requesting.request_payment(call, clinician, asked, StripeApi.for_app())
        db.session.commit()
        return made.request

    def rejoined_patient(self, place: Place) -> Participant:
        """A patient who joined the payment's call after the request: one to recognise."""
        patient = join_as_patient(place.payment.call, place.patient.display_name)
        db.session.commit()
        return patient

    def paid_payment(self, place: Place) -> PaymentRequest:
        """A request of ``place``'s call paid at the stand-in and recorded, made once."""
        if place.name not in self.paid:
            request = self.fresh_payment(place)
            self.stripe.pay(request.checkout_session_id)
            transitions.sync_with_stripe(request, StripeApi.for_app())
            db.session.commit()
            self.paid[place.name] = request
        return self.paid[place.name]

    def refunded_payment(self, place: Place) -> PaymentRefund:
        """A refund of A$1.00 of ``place``'s paid payment, made once by its clinic admin."""
        if place.name not in self.refunded:
            request = self.paid_payment(place)
            asked = refunds.RefundAsked("1.00", False, "Matrix", secrets.token_urlsafe(18))
            admin = place.people["clinic_admin"]
            made = refunds.refund_payment(request, asked, admin, StripeApi.for_app())
            db.session.commit()
            self.refunded[place.name] = made.refund
        return self.refunded[place.name]

    def payout(self, place: Place) -> Payout:
        """A paid payout of the account linked to ``place``'s GP clinic, its (no) contents
        read: made once per place, in vcpay only (the pages read nothing from Stripe)."""
        account = live_link(place.clinic).account_id
        found = db.session.scalar(select(Payout).filter_by(stripe_account_id=account))
        if found is None:
            now = utcnow()
            found = Payout(
                stripe_account_id=account, payout_id=f"po_matrix_{place.name}", amount=1234,
                currency="aud", status="paid", arrival_date=now, created=now,
                contents_read_at=now, updated_at=now,
            )  # fmt: skip
            db.session.add(found)
            db.session.commit()
        return found

    def relinked_spare(self, place: Place) -> Clinic:
        """The spare clinic, linked again if an earlier case removed its link."""
        if live_link(place.spare) is None:
            link_clinic(self.stripe, place.spare)
            db.session.commit()
        return place.spare


def _organisation_a() -> tuple[Organisation, dict[str, User], str]:
    organisation = seed_demo(enable_gateway=True)
    people = {
        "manager": "manager@harbourside.example",
        "org_admin": "orgadmin@harbourside.example",
        "clinic_admin": "clinicadmin@harbourside.example",
        "clinician": "clinician@harbourside.example",
    }
    users = {role: find_user_by_email(email) for role, email in people.items()}
    return organisation, users, DEMO_PASSWORD


def _organisation_b() -> tuple[Organisation, dict[str, User], str]:
    organisation = factories.organisation(
        "Riverside Care", "Riverside GP Clinic", "Riverside Physiotherapy"
    )
    gp = organisation.clinics[0]
    gp.gateway_enabled_at = utcnow()
    users = {
        "manager": factories.org_admin("manager@riverside.example", organisation, manager=True),
        "org_admin": factories.org_admin("orgadmin@riverside.example", organisation),
        "clinic_admin": factories.clinic_person(
            "clinicadmin@riverside.example", gp, ClinicRole.CLINIC_ADMIN
        ),
        "clinician": factories.clinic_person(
            "clinician@riverside.example", gp, ClinicRole.CLINICIAN
        ),
    }
    return organisation, users, factories.PASSWORD


def _spare_clinic(organisation: Organisation, people: dict[str, User]) -> Clinic:
    """A second clinic where the same clinic admin and clinician hold the same roles."""
    spare = Clinic(organisation=organisation, name=f"{organisation.name} Spare Clinic")
    spare.gateway_enabled_at = utcnow()
    db.session.add(spare)
    db.session.flush()
    add_clinic_role(people["clinic_admin"], spare, ClinicRole.CLINIC_ADMIN)
    add_clinic_role(people["clinician"], spare, ClinicRole.CLINICIAN)
    return spare


def _approved_request(organisation: Organisation, gp: Clinic, people) -> EnablementRequest:
    """The request that switched the GP clinic on: asked by the org admin, endorsed by the
    manager, approved. Its clinic admin sees it; acting on it is refused by its state."""
    now = utcnow()
    request = EnablementRequest(
        organisation=organisation, requester=people["org_admin"],
        state=RequestState.APPROVED.value, contact_name="Alex", contact_email="a@example.org",
        contact_phone="02 5550 0100", terms_accepted_at=now, submitted_at=now,
        endorsed_by=people["manager"], endorsed_at=now, decided_at=now,
    )  # fmt: skip
    request.clinics.append(
        RequestedClinic(clinic_id=gp.id, has_stripe_account=True, stripe_account_hint=gp.name)
    )
    db.session.add(request)
    db.session.flush()
    gp.gateway_enabled_by_request_id = request.id
    return request


def _join(app, call: Call, name: str) -> ServerLikeClient:
    patient = app.test_client()
    token = csrf_token(patient, f"/join/{call.guest_token}")
    joined = patient.post(
        f"/join/{call.guest_token}", data={"csrf_token": token, "display_name": name}
    )
    assert joined.status_code == 303, joined.get_data(as_text=True)
    return patient


def _session_of(client, actor: Actor, page: str) -> Actor:
    actor.csrf = csrf_token(client, page)
    actor.cookie = client.get_cookie(client.application.config["SESSION_COOKIE_NAME"]).value
    return actor


def _build_place(
    app, stripe: StripeControl, name: str, organisation: Organisation, people: dict[str, User]
) -> tuple[Place, dict[str, Actor]]:
    gp, physio = organisation.clinics  # the GP clinic, then one with the gateway off
    spare = _spare_clinic(organisation, people)
    enablement = _approved_request(organisation, gp, people)
    link_clinic(stripe, gp)
    link_clinic(stripe, spare)
    db.session.commit()
    call = start_call(gp, people["clinician"], f"{name}: Pat Citizen")
    other_call = start_call(gp, people["clinician"], f"{name}: someone else")
    db.session.commit()
    guest = _join(app, call, "Pat Citizen")
    other_guest = _join(app, other_call, "Robin Other")
    # One patient in the call: the request is theirs alone.
    asked = requesting.PaymentAsked("85.00", "Consultation", secrets.token_urlsafe(18))
    payment = requesting.request_payment(
        call, people["clinician"], asked, StripeApi.for_app()
    ).request
    db.session.commit()
    assert payment.payer is not None
    place = Place(
        name=name, home=name, organisation=organisation, clinic=gp, spare=spare,
        physio=physio, call=call, other_call=other_call, patient=payment.payer,
        payment=payment, enablement=enablement, people=people,
    )  # fmt: skip
    anonymous = app.test_client()
    visitors = {
        "anonymous": _session_of(anonymous, Actor("anonymous"), "/sign-in"),
        "guest": _session_of(guest, Actor("guest"), "/sign-in"),
        "other_guest": _session_of(other_guest, Actor("other_guest"), "/sign-in"),
    }
    return place, visitors


def _signed_in(app, place: Place, role: str, password: str) -> Actor:
    browser = app.test_client()
    signed = sign_in(browser, place.people[role].email, password)
    assert signed.status_code == 302, signed.get_data(as_text=True)
    return _session_of(browser, Actor(role, place.name), "/")


def build_world(app, stripe: StripeControl) -> World:
    places, visitors, passwords = {}, {}, {}
    for name, make in (("A", _organisation_a), ("B", _organisation_b)):
        organisation, people, passwords[name] = make()
        places[name], visitors[name] = _build_place(app, stripe, name, organisation, people)
    staff = [
        _signed_in(app, places[name], role, passwords[name])
        for name in ("A", "B")
        for role in STAFF_ROLES
    ]
    places["A+B"] = places["A"].mixed_with(places["B"])
    return World(
        app=app, stripe=stripe, places=places, visitors=visitors, staff=staff, passwords=passwords
    )


@pytest.fixture(scope="module", name="matrix_app")
def matrix_app_fixture(_schema, standin):
    """One application per backend for the whole module, pointed at the module's stand-in."""
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": _schema,
            "CELERY_BROKER_URL": "memory://",
            # The matrix sends hundreds of requests from one address; limits have their tests.
            "RATELIMIT_ENABLED": False,
            # No beat runs here, and the module takes minutes: /readyz's background limits
            # (tests/test_observability.py) must not turn it 503 halfway through.
            "READY_HEARTBEAT_SECONDS": 86400,
            "READY_JIRA_POLL_SECONDS": 86400,
            "READY_WEBHOOK_SECONDS": 86400,
            "STRIPE_API_BASE": standin,
            "STRIPE_MAX_NETWORK_RETRIES": 0,
        }
    )
    app.test_client_class = ServerLikeClient
    forget_clients()
    with app.app_context():
        _empty_tables()
        yield app
        db.session.remove()
        _empty_tables()
        if (inbox := app.extensions.get("stripe_inbox_engine")) is not None:
            inbox.dispose()
        app.extensions["call_waker"].stop()
    forget_clients()


@pytest.fixture(scope="module", name="world")
def world_fixture(matrix_app, standin) -> World:
    stripe = StripeControl(standin)
    stripe.call("POST", "reset")
    return build_world(matrix_app, stripe)
