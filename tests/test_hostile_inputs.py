"""Hostile input on every route that takes any, as a clinician, a clinic admin, a patient and
someone signed out: whatever Hypothesis sends, vcpay answers below 500, and a refusal (4xx)
writes no row, creates no Checkout Session at Stripe and sends nothing to Jira.

Examples are derandomised and no example database is kept, so CI sees the same inputs on
every run; each test is bounded to a few dozen examples per database backend.
"""

import hashlib
import hmac
import json
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.conftest import csrf_token, sign_in
from tests.payment_steps import CLINICIAN, join, request_form, start_call
from tests.sandbox.conftest import start_jira_standin, stop_jira_standin
from tests.stripe_events import signed_text
from tests.stripe_standin import link_clinic
from tests.test_enablement_jira import use_standin
from vcpay.extensions import db, limiter
from vcpay.inputs import parse_id
from vcpay.payments.models import PaymentRequest
from vcpay.people.demo import seed_demo
from vcpay.people.models import ClinicRole
from vcpay.people.services import add_clinic_role, find_user_by_email

CLINIC_ADMIN = "clinicadmin@harbourside.example"
MANAGER = "manager@harbourside.example"
JIRA_SECRET = "jira_webhook_vcpay_sandbox"


def hostile(max_examples: int):
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# What an attacker, a broken client or a confused person might send.
NASTY = [
    "", " ", "\x00", "a\x00b", "\t", "\r\n", "\x1b[2J", "\x7f", "\x85", "\u2028", "\u202e",
    "\ufeff", "\U0001f600", "\u00b2", "\u0663", "\uff11", "-1", "0", "00", "+1", "1.0", "1e3",
    "2147483647", "2147483648", "9223372036854775807", "9223372036854775808", "9" * 40,
    "NaN", "null", "[]", "{}", "' OR '1'='1", "<script>alert(1)</script>", "../../etc/passwd",
    "%00", "%2e%2e%2f", "A" * 3000, "anyone", "85", "85.00", "$1,250.00", "acct_", "evt_",
]  # fmt: skip
texts = st.one_of(st.sampled_from(NASTY), st.text(max_size=150))
ids = st.one_of(
    st.integers(min_value=-3, max_value=2**70).map(str),
    st.sampled_from(NASTY),
    st.text(max_size=12),
)
amounts = st.one_of(
    texts,
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
    st.integers(min_value=-(10**9), max_value=10**12).map(str),
    st.from_regex(r"\A\$?[0-9,]{1,12}(\.[0-9]{0,4})?\Z"),
)


def json_containers(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    json_containers,
    max_leaves=12,
)
queries = st.dictionaries(texts, texts, max_size=3)


def header_value(text: str) -> str:
    """What a server hands the app for a header sent as UTF-8: its bytes as latin-1."""
    return text.replace("\r", "").replace("\n", "").encode().decode("latin-1")


def segment(text: str) -> str:
    return quote(text, safe="")


def or_real(drawn: str | None, real) -> str:
    """None stands for the real id, token or key: hostile input mixed with valid."""
    return str(real) if drawn is None else drawn


# The world the tests attack: a call with a patient and a payment request, a clinic admin
# with a clinic to request the gateway for, and every stand-in's state recorded.


@pytest.fixture(scope="module")
def jira_standin():
    url, server = start_jira_standin()
    yield url
    stop_jira_standin(server)


class World:
    def __init__(self, app, stripe_control, jira):
        self.app, self.stripe, self.jira = app, stripe_control, jira
        organisation = seed_demo(enable_gateway=True)
        self.organisation = organisation
        self.gp, self.physio = sorted(organisation.clinics, key=lambda c: c.name)
        # The clinic admin also runs the physiotherapy clinic, whose gateway is off: they
        # can ask for it, and their forms are part of what is attacked.
        add_clinic_role(find_user_by_email(CLINIC_ADMIN), self.physio, ClinicRole.CLINIC_ADMIN)
        db.session.commit()
        self._link_stripe()
        self.clinician = self.signed_in(CLINICIAN)
        self.clinic_admin = self.signed_in(CLINIC_ADMIN)
        self.manager = self.signed_in(MANAGER)
        self.anonymous = app.test_client()
        self.call = start_call(self.clinician, self.gp)
        self.patient = join(app, self.call)
        data = {**request_form(self.clinician, self.call), "amount": "85", "description": "Visit"}
        made = self.clinician.post(f"/calls/{self.call.id}/payment-requests", data=data)
        assert made.status_code == 303
        self.request_key = data["request_key"]
        self.patient_participant_id = db.session.scalar(
            select(PaymentRequest.payer_id).filter_by(request_key=self.request_key)
        )
        self._waiting: int | None = None

    def _link_stripe(self) -> None:
        """The GP clinic's Stripe account, connected at the stand-in, charges enabled."""
        link_clinic(self.stripe, self.gp)
        db.session.commit()

    def request_awaiting_endorsement(self) -> int:
        """The clinic admin's request for the physiotherapy clinic, waiting for the manager."""
        if self._waiting is None:
            path = f"/enablement/organisations/{self.organisation.id}/requests/new"
            data = {
                "csrf_token": csrf_token(self.clinic_admin, path),
                "clinics-0-clinic_id": str(self.physio.id),
                "clinics-0-selected": "y",
                "clinics-0-has_stripe_account": "y",
                "clinics-0-stripe_account_hint": "billing@physio.example",
                "contact_name": "Casey",
                "contact_email": "casey@physio.example",
                "contact_phone": "02 5550 0100",
                "accept_terms": "y",
                "submit": "x",
            }
            sent = self.clinic_admin.post(path, data=data)
            assert sent.status_code == 302, sent.get_data(as_text=True)
            self._waiting = int(sent.location.rsplit("/", 1)[-1])
        return self._waiting

    def token_for(self, who: str) -> str:
        """A CSRF token of this person's session, from a page they may see."""
        page = {"patient": f"/join/{self.call.guest_token}", "anonymous": "/sign-in"}
        return csrf_token(getattr(self, who), page.get(who, "/"))

    def signed_in(self, email: str):
        client = self.app.test_client()
        sign_in(client, email)
        return client

    def state(self) -> dict:
        """Row counts of every table, the stand-in's Checkout Sessions and Jira's calls."""
        db.session.rollback()
        counts = {
            table.name: db.session.scalar(select(func.count()).select_from(table))
            for table in db.metadata.sorted_tables
        }
        counts["stripe checkout sessions"] = len(self.stripe.sessions())
        counts["jira calls"] = len(self.jira.calls())
        return counts

    def check(self, send) -> object:
        """Send one hostile request; below 500 always, and a refusal changes nothing."""
        before = self.state()
        response = send()
        status = response.status_code
        if status >= 500:
            pytest.fail(f"{status}: {response.get_data(as_text=True)[:500]}")
        response.close()
        if status >= 400:
            assert self.state() == before, f"a {status} refusal wrote something"
        return response


@pytest.fixture
def world(app, stripe_control, jira_standin):
    limiter.enabled = False  # the attack is the point here, not its rate
    app.config.update(STREAM_MAX_SECONDS=0.01)  # streams end at once, so they can be read
    try:
        yield World(app, stripe_control, use_standin(app, jira_standin))
    finally:
        limiter.enabled = True


# Ids in paths, as each kind of person.

ID_ROUTES = [
    ("GET", "/calls/{}"),
    ("GET", "/calls/{}/panel"),
    ("POST", "/calls/{}/payment-requests"),
    ("POST", "/calls/{}/end"),
    ("GET", "/organisations/{}"),
    ("GET", "/client-payments/clinics/{}"),
    ("POST", "/client-payments/clinics/{}/stripe/connect"),
    ("POST", "/client-payments/clinics/{}/stripe/refresh"),
    ("POST", "/client-payments/clinics/{}/stripe/remove"),
    ("GET", "/enablement/requests/{}"),
    ("GET", "/enablement/requests/{}/edit"),
    ("POST", "/enablement/requests/{}/endorse"),
    ("POST", "/enablement/requests/{}/withdraw"),
    ("POST", "/enablement/requests/{}/send-back"),
    ("GET", "/enablement/organisations/{}/requests"),
    ("GET", "/enablement/organisations/{}/requests/new"),
    ("GET", "/payments/{}"),
    ("POST", "/payments/{}/receipt"),
    ("GET", "/payments/clinics/{}/time-zone"),
    ("POST", "/payments/clinics/{}/time-zone"),
]
PEOPLE = ["clinician", "clinic_admin", "manager", "patient", "anonymous"]


@hostile(90)
@given(
    route=st.sampled_from(ID_ROUTES),
    who=st.sampled_from(PEOPLE),
    value=ids,
    query=queries,
    with_token=st.booleans(),
)
@example(("GET", "/calls/{}"), "clinician", "2147483648", {}, False)
@example(("GET", "/calls/{}"), "clinician", "9223372036854775808", {}, False)
@example(("GET", "/client-payments/clinics/{}"), "clinic_admin", "\u0661", {}, False)
@example(("GET", "/calls/{}"), "clinician", "1", {"x": "\x00"}, False)
def test_ids_in_paths(world, route, who, value, query, with_token):
    method, path = route
    # Ending the call or removing its clinic's Stripe account would leave later examples
    # nothing to attack; both are covered by their own tests.
    assume(
        not (path.endswith(("/end", "/remove")) and parse_id(value) in (world.call.id, world.gp.id))
    )
    client = getattr(world, who)
    url = path.replace("{}", segment(value)) + ("?" + urlencode(query) if query else "")
    token = world.token_for(who) if with_token and method == "POST" else "x"
    world.check(lambda: client.open(url, method=method, data={"csrf_token": token}))


# Forms, with and without their CSRF token.


@hostile(60)
@given(clinic_id=st.one_of(ids, st.none()), title=texts)
@example("\u00b2", "")
@example("abc", "")
@example("2147483648", "")
@example(None, "Pat\x00")
@example(None, "Pat\tCitizen")
def test_starting_a_call(world, clinic_id, title):
    token = csrf_token(world.clinician, "/calls/")
    data = {"csrf_token": token, "clinic_id": or_real(clinic_id, world.gp.id), "title": title}
    world.check(lambda: world.clinician.post("/calls/start", data=data))


@hostile(90)
@given(
    amount=amounts,
    description=texts,
    payer=st.one_of(st.just("anyone"), st.just(""), ids),
    fresh_key=st.booleans(),
    key=texts,
    as_json=st.booleans(),
)
@example("85", "Consult\x00ation", "", True, "", False)
@example("85", "Consult\tation", "anyone", True, "", True)
@example("\u0668\u0665", "Consultation", "", True, "", True)
@example("85", "Consultation", "\u00b2", True, "", True)
def test_request_payment(world, amount, description, payer, fresh_key, key, as_json):
    form = request_form(world.clinician, world.call)
    data = {
        **form,
        "amount": amount,
        "description": description,
        "payer": payer,
        "request_key": form["request_key"] if fresh_key else key,
    }
    accept = {"Accept": "application/json"} if as_json else {}
    url = f"/calls/{world.call.id}/payment-requests"
    world.check(lambda: world.clinician.post(url, data=data, headers=accept))


@hostile(60)
@given(body=json_values)
@example({"amount": 85, "description": "Consultation"})
@example("85")
@example({"amount": "85", "description": "Consult\x00ation"})
def test_request_payment_as_json(world, body):
    form = request_form(world.clinician, world.call)
    if isinstance(body, dict):
        body.setdefault("request_key", form["request_key"])
    headers = {"X-CSRFToken": form["csrf_token"], "Accept": "application/json"}
    url = f"/calls/{world.call.id}/payment-requests"
    world.check(lambda: world.clinician.post(url, json=body, headers=headers))


@hostile(60)
@given(
    key=st.one_of(texts, st.none()),
    action=st.sampled_from(["cancel", "acknowledge"]),
    with_token=st.booleans(),
)
def test_acting_on_a_payment_request(world, key, action, with_token):
    assume(key is not None or action == "acknowledge")  # cancelling it is not an attack
    token = csrf_token(world.clinician, f"/calls/{world.call.id}") if with_token else "x"
    path = f"/calls/{world.call.id}/payment-requests/{segment(or_real(key, world.request_key))}"
    world.check(lambda: world.clinician.post(f"{path}/{action}", data={"csrf_token": token}))


CONTACT = {
    "contact_name": "Casey",
    "contact_email": "c@x.example",
    "contact_phone": "",
    "notes": "",
}
FIELD_NAMES = st.one_of(
    st.sampled_from(
        ["clinic_id", "selected", "has_stripe_account", "stripe_account_hint", "bogus"]
    ),
    st.text(max_size=8),
)


@hostile(75)
@given(
    entries=st.dictionaries(
        st.tuples(st.one_of(st.sampled_from(["0", "1"]), ids), FIELD_NAMES),
        st.one_of(texts, st.none(), st.just("y")),
        max_size=5,
    ),
    contact=st.fixed_dictionaries(
        {"contact_name": texts, "contact_email": texts, "contact_phone": texts, "notes": texts}
    ),
    button=st.sampled_from(["submit", "save_draft", ""]),
    accept_terms=st.sampled_from(["y", "", "\x00"]),
)
@example({("\u00b2", "clinic_id"): None}, CONTACT, "save_draft", "y")
@example({("9" * 5000, "clinic_id"): None}, CONTACT, "save_draft", "y")
@example({("0", "clinic_id"): "\u00b2", ("0", "selected"): "y"}, CONTACT, "submit", "y")
@example({("0", "clinic_id"): None, ("0", "stripe_account_hint"): "a\tb"}, CONTACT, "submit", "y")
def test_requesting_the_gateway(world, entries, contact, button, accept_terms):
    path = f"/enablement/organisations/{world.organisation.id}/requests/new"
    data = {"csrf_token": csrf_token(world.clinic_admin, path), **contact}
    for (index, name), value in entries.items():
        data[f"clinics-{index}-{name}"] = or_real(value, world.physio.id)
    data.update({button: "x"} if button else {})
    data["accept_terms"] = accept_terms
    world.check(lambda: world.clinic_admin.post(path, data=data))


@hostile(45)
@given(reason=texts, request_id=st.one_of(ids, st.none()))
def test_sending_a_request_back(world, reason, request_id):
    waiting = world.request_awaiting_endorsement()
    target = f"/enablement/requests/{segment(or_real(request_id, waiting))}/send-back"
    token = world.token_for("manager")
    world.check(lambda: world.manager.post(target, data={"csrf_token": token, "reason": reason}))


@hostile(45)
@given(query=st.dictionaries(st.sampled_from(["code", "state", "error", "scope", "x"]), texts))
def test_coming_back_from_stripe(world, query):
    url = "/client-payments/stripe/callback?" + urlencode(query)
    world.check(lambda: world.clinic_admin.get(url))


@hostile(45)
@given(email=texts, password=texts, next_page=texts, language=texts)
def test_signing_in_and_choosing_a_language(world, email, password, next_page, language):
    client = world.app.test_client()
    token = csrf_token(client)
    data = {"csrf_token": token, "email": email, "password": password}
    world.check(lambda: client.post("/sign-in?" + urlencode({"next": next_page}), data=data))
    data = {"csrf_token": token, "language": language, "next": next_page}
    world.check(lambda: client.post("/language", data=data))


# The Payments page: its filters and cursors, its export, a receipt sent again, a time zone.

LEDGER_FIELDS = ["clinic", "from", "to", "status", "clinician", "q", "after", "before", "x"]


@hostile(75)
@given(
    query=st.dictionaries(st.sampled_from(LEDGER_FIELDS), st.one_of(texts, ids), max_size=4),
    export=st.booleans(),
    who=st.sampled_from(["clinician", "clinic_admin", "manager", "anonymous"]),
)
@example({"from": "2026-02-30"}, False, "clinic_admin")
@example({"to": "9999-12-31", "from": "0001-01-01"}, True, "manager")
@example({"after": "W1siMjAyNi0wMy0wMVQwMDowMDowMCswMDowMCIsIDFdXQ"}, False, "manager")
@example({"clinic": "2147483648", "q": "%_\\"}, True, "clinic_admin")
@example({"q": "\x00"}, False, "clinician")
def test_filtering_and_exporting_payments(world, query, export, who):
    client = getattr(world, who)
    url = ("/payments/export.csv" if export else "/payments/") + "?" + urlencode(query)

    def send():
        response = client.get(url)
        response.get_data()  # a streamed export fails, if at all, while it is read
        return response

    world.check(send)


@hostile(45)
@given(email=texts, resend_key=texts, time_zone=texts, payment=st.one_of(ids, st.none()))
@example("pat@example.org", "k" * 24, "Australia/Perth", None)
@example("pat@\x00.org", "k" * 24, "Australia/../../etc/passwd", None)
def test_resending_a_receipt_and_choosing_a_time_zone(world, email, resend_key, time_zone, payment):
    payment_id = db.session.scalar(
        select(PaymentRequest.id).filter_by(request_key=world.request_key)
    )
    target = f"/payments/{segment(or_real(payment, payment_id))}/receipt"
    token = world.token_for("clinic_admin")
    data = {"csrf_token": token, "email": email, "resend_key": resend_key}
    world.check(lambda: world.clinic_admin.post(target, data=data))
    zone = {"csrf_token": token, "time_zone": time_zone}
    world.check(lambda: world.clinic_admin.post(f"/payments/clinics/{world.gp.id}/time-zone",
                                                data=zone))  # fmt: skip


# The patient's side: the guest token and the request key in the path, the name they give.


GUEST_PATHS = ["", "/panel", "/payments/<key>/pay", "/payments/<key>/done", "/payments/<key>/left"]


@hostile(75)
@given(
    token=st.one_of(texts, st.none()),
    tail=st.sampled_from(GUEST_PATHS),
    key=st.one_of(texts, st.none()),
    who=st.sampled_from(["patient", "anonymous"]),
    query=st.dictionaries(st.sampled_from(["session_id", "after", "x"]), texts, max_size=2),
)
@example("a\x00b", "", None, "anonymous", {})
@example(None, "/payments/<key>/done", "a\x00", "patient", {"session_id": "cs_\x00"})
def test_guest_links(world, token, tail, key, who, query):
    client = getattr(world, who)
    path = f"/join/{segment(or_real(token, world.call.guest_token))}"
    path += tail.replace("<key>", segment(or_real(key, world.request_key)))
    url = path + ("?" + urlencode(query) if query else "")
    world.check(lambda: client.get(url))


@hostile(45)
@given(
    token=st.one_of(texts, st.none()),
    key=st.one_of(texts, st.none()),
    who=st.sampled_from(["patient", "anonymous"]),
    with_token=st.booleans(),
)
def test_pressing_pay_now(world, token, key, who, with_token):
    client = getattr(world, who)
    path = f"/join/{segment(or_real(token, world.call.guest_token))}"
    path += f"/payments/{segment(or_real(key, world.request_key))}/pay"
    csrf = world.token_for(who) if with_token else "x"
    world.check(lambda: client.post(path, data={"csrf_token": csrf}))


@hostile(45)
@given(signed=texts, who=st.sampled_from(["patient", "anonymous", "clinician"]))
@example("a\x00b", "anonymous")
@example("9" * 3000, "anonymous")
def test_opening_a_receipt_link(world, signed, who):
    world.check(lambda: getattr(world, who).get(f"/join/receipts/{segment(signed)}"))


@hostile(60)
@given(participant=st.one_of(ids, st.none()), person=st.one_of(ids, st.none()))
@example(None, "9" * 30)
@example(None, "\u00b2")
@example("2147483648", None)
def test_recognising_a_patient(world, participant, person):
    """The clinician says who a patient is: both ids are the attacker's to choose."""
    patient_id = world.patient_participant_id
    path = f"/calls/{world.call.id}/participants/{segment(or_real(participant, patient_id))}"
    data = {"csrf_token": world.token_for("clinician"), "person": or_real(person, patient_id)}
    world.check(lambda: world.clinician.post(f"{path}/recognise", data=data))


@hostile(45)
@given(name=texts)
@example("Pat\x00")
@example("Pat\u0085")
def test_joining_a_call(world, name):
    client = world.app.test_client()
    path = f"/join/{world.call.guest_token}"
    data = {"csrf_token": csrf_token(client, path), "display_name": name}
    world.check(lambda: client.post(path, data=data))


# Headers: where an event stream resumes.


@hostile(60)
@given(
    last_event_id=texts.map(header_value),
    after=st.one_of(st.none(), texts),
    who=st.sampled_from(["clinician", "patient"]),
)
@example("", "\u00b2", "clinician")
@example("\u00b2", None, "patient")  # the byte 0xB2, as a server hands it over
@example("9" * 30, None, "clinician")
def test_resuming_an_event_stream(world, last_event_id, after, who):
    path = (
        f"/calls/{world.call.id}/events"
        if who == "clinician"
        else f"/join/{world.call.guest_token}/events"
    )
    url = path + ("?" + urlencode({"after": after}) if after is not None else "")
    client = getattr(world, who)

    def send():
        response = client.get(url, headers={"Last-Event-ID": last_event_id})
        response.get_data()  # the stream ends at once: STREAM_MAX_SECONDS is tiny here
        return response

    world.check(send)


# Webhooks, unsigned and signed. A signed hostile event is refused with 400 or stored and
# answered; never a 500, which Stripe would retry for days.


@hostile(60)
@given(body=st.binary(max_size=300), signature=texts.map(header_value))
@example(b"\xff\xfe", "t=1,v1=00")
def test_unsigned_stripe_webhooks(world, body, signature):
    response = world.check(
        lambda: world.anonymous.post(
            "/webhooks/stripe", data=body, headers={"Stripe-Signature": signature}
        )
    )
    assert response.status_code == 400


EVENT_IDS = st.one_of(st.from_regex(r"\Aevt_[A-Za-z0-9]{8,24}\Z"), texts, st.integers(), st.none())
ACCOUNT_IDS = st.one_of(
    st.none(), st.from_regex(r"\Aacct_[A-Za-z0-9]{16}\Z"), texts, st.integers(), json_values
)
CREATED = st.one_of(
    st.integers(min_value=1_500_000_000, max_value=1_900_000_000),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.booleans(),
    texts,
)


@hostile(90)
@given(
    event_id=EVENT_IDS,
    event_type=st.one_of(st.sampled_from(["account.updated", "checkout.session.completed"]), texts),
    account=ACCOUNT_IDS,
    created=CREATED,
    livemode=json_values,
    data=json_values,
    nesting=st.sampled_from([0, 0, 0, 200, 5000]),
)
@example("evt_1", "account.updated", "acct_1", 10**20, False, {}, 0)
@example("evt_1", "account.updated", "acct_" + "a" * 300, 1767225600, False, {}, 0)
@example("evt_\x00", "account.updated", None, 1767225600, False, {}, 0)
@example("evt_1", "account.updated", None, 1767225600, False, {"name": "\x00"}, 0)
@example("evt_1", "account.updated", None, 1767225600, False, {}, 5000)
def test_signed_stripe_webhooks(
    world, event_id, event_type, account, created, livemode, data, nesting
):
    body = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "account": account,
        "created": created,
        "livemode": livemode,
        "data": {"object": data},
    }
    payload = json.dumps(body)
    if nesting:
        payload = payload[:-1] + ', "deep": ' + "[" * nesting + "]" * nesting + "}"
    payload_bytes, header = signed_text(payload)
    world.check(
        lambda: world.anonymous.post(
            "/webhooks/stripe",
            data=payload_bytes,
            headers={"Stripe-Signature": header, "Content-Type": "application/json"},
        )
    )


@hostile(45)
@given(body=st.binary(max_size=300), signature=texts.map(header_value))
def test_unsigned_jira_webhooks(world, body, signature):
    response = world.check(
        lambda: world.anonymous.post(
            "/webhooks/jira", data=body, headers={"X-Hub-Signature": signature}
        )
    )
    assert response.status_code == 400


@hostile(60)
@given(
    key=st.one_of(st.from_regex(r"\A[A-Z]{2,5}-[0-9]{1,6}\Z"), texts, json_values),
    extra=json_values,
    nesting=st.sampled_from([0, 0, 0, 5000]),
)
@example("PAY-1\x00", None, 0)
@example("PAY-1", None, 5000)
def test_signed_jira_webhooks(world, key, extra, nesting):
    payload = json.dumps({"webhookEvent": "jira:issue_updated", "issue": {"key": key}, "x": extra})
    if nesting:
        payload = payload[:-1] + ', "deep": ' + "[" * nesting + "]" * nesting + "}"
    body = payload.encode()
    digest = hmac.new(JIRA_SECRET.encode(), body, hashlib.sha256).hexdigest()
    world.check(
        lambda: world.anonymous.post(
            "/webhooks/jira",
            data=body,
            headers={"X-Hub-Signature": f"sha256={digest}", "Content-Type": "application/json"},
        )
    )
