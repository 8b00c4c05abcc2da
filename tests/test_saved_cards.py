"""Saved cards: a clinic setting, the offer to save a card when a patient joins, the card
recorded once (return page and webhook), removal by the clinic admin; on the Stripe stand-in
over HTTP with the real ``stripe`` library.
"""

import csv
import io
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import CSRF_FIELD, csrf_token, sign_in
from tests.payment_steps import (
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    start_call,
)
from tests.stripe_standin import link_clinic, process_received, received
from tests.test_refunds import refund
from vcpay.audit.models import AuditEntry
from vcpay.calls.models import Call
from vcpay.client_payments.models import AccountRoute
from vcpay.client_payments.stripe_link import live_link
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import StripeApi
from vcpay.mail.models import OutboundEmail
from vcpay.payments import saved_cards
from vcpay.payments.models import PaymentRequest, PaymentState, SavedCard
from vcpay.payments.reconciler import reconcile
from vcpay.payments.tasks import detach_old_saved_cards
from vcpay.people.models import Clinic, User
from vcpay.webhooks.models import EventState

CLINIC_ADMIN = "clinicadmin@harbourside.example"
KEY_FIELD = re.compile(r'name="request_key" type="hidden" value="([^"]+)"')
LINK = re.compile(r"https?://\S+/pay/confirm/\S+")


@pytest.fixture(name="admin")
def admin_fixture(app, gp):
    browser = app.test_client()
    sign_in(browser, CLINIC_ADMIN)
    return browser


def allow(admin, clinic, allowed="yes"):
    token = csrf_token(admin, f"/client-payments/clinics/{clinic.id}/saved-cards")
    return admin.post(
        f"/client-payments/clinics/{clinic.id}/saved-cards/setting",
        data={"csrf_token": token, "allowed": allowed},
    )


def save_page(call) -> str:
    return f"/join/{call.guest_token}/save-card"


def choose(patient, call, choice="save", consent=True, email="pat@example.org"):
    page = patient.get(save_page(call)).get_data(as_text=True)
    data = {"csrf_token": CSRF_FIELD.search(page).group(1), "choice": choice, "email": email}
    if consent:
        data["consent"] = saved_cards.CONSENT_VERSION
    return patient.post(save_page(call), data=data)


def cards() -> list[SavedCard]:
    db.session.rollback()
    return list(db.session.scalars(select(SavedCard).order_by(SavedCard.id)))


def save_a_card(app, admin, clinician, gp, control, card="4242424242424242"):
    """A patient joins, saves a card on Stripe's page and comes back: the call, the patient,
    the card row."""
    allow(admin, gp)
    call = start_call(clinician, gp)
    patient = join(app, call)
    to_stripe = choose(patient, call)
    [row] = cards()
    assert to_stripe.status_code == 303 and to_stripe.location == row.setup_url
    control.pay(row.setup_session_id, card, email="pat@example.org")
    back = patient.get(f"{save_page(call)}/done?session_id={row.setup_session_id}")
    assert back.status_code == 303 and back.location == f"/join/{call.guest_token}"
    return call, patient, cards()[-1]


def test_the_setting_is_off_by_default_and_only_the_clinic_admin_turns_it_on(
    app, admin, clinician, gp
):
    assert not gp.saved_cards_allowed
    page = admin.get(f"/client-payments/clinics/{gp.id}").get_data(as_text=True)
    assert "Patients may save a card for after the call" in page
    call = start_call(clinician, gp)
    patient = join(app, call)
    assert patient.get(f"/join/{call.guest_token}").status_code == 200  # no offer
    assert patient.get(save_page(call)).location == f"/join/{call.guest_token}"

    assert allow(clinician, gp).status_code in (403, 404)  # a clinician may not
    db.session.rollback()
    assert not db.session.get(Clinic, gp.id).saved_cards_allowed
    assert allow(admin, gp).status_code == 303
    db.session.rollback()
    assert db.session.get(Clinic, gp.id).saved_cards_allowed
    actions = db.session.scalars(select(AuditEntry.action)).all()
    assert "payment.saved_cards_allowed" in actions
    token = csrf_token(admin, f"/client-payments/clinics/{gp.id}/saved-cards")
    refused = admin.post(
        f"/client-payments/clinics/{gp.id}/saved-cards/setting", data={"allowed": "yes"}
    )
    assert refused.status_code == 400 and token  # no CSRF token: refused


def test_a_patient_saves_a_card_and_nothing_is_charged(app, admin, clinician, gp, webhooks):
    allow(admin, gp)
    call = start_call(clinician, gp)
    asked = app.test_client().get(f"/join/{call.guest_token}").get_data(as_text=True)
    assert "offers to keep a card for charges after the call" in asked
    patient = join(app, call)
    sent = patient.get(f"/join/{call.guest_token}")
    assert sent.status_code == 303 and sent.location == save_page(call)
    page = patient.get(save_page(call)).get_data(as_text=True)
    assert "I allow Harbourside GP Clinic to keep this card" in page
    assert "Nothing is charged now" in page

    refused = choose(patient, call, consent=False)
    assert refused.status_code == 400 and "Tick the box" in refused.get_data(as_text=True)
    assert cards() == []

    to_stripe = choose(patient, call)
    [row] = cards()
    assert to_stripe.location == row.setup_url
    assert row.account_id == live_link(gp).account_id and row.customer_id.startswith("cus_")
    assert row.saved_at is None and row.consent_version == saved_cards.CONSENT_VERSION
    webhooks.pay(row.setup_session_id, "4242424242424242", email="pat@example.org")
    back = patient.get(f"{save_page(call)}/done?session_id={row.setup_session_id}")
    assert back.status_code == 303 and back.location == f"/join/{call.guest_token}"
    screen = patient.get(back.location)
    assert screen.status_code == 200
    assert "Your card ending 4242 is saved. Nothing was charged." in screen.get_data(as_text=True)
    [saved] = cards()
    assert saved.last4 == "4242" and saved.brand == "visa" and saved.is_usable
    assert saved.payment_method_id.startswith("pm_") and saved.exp_year
    assert db.session.scalars(select(PaymentRequest)).all() == []
    webhooks.wait_for_webhooks()
    process_received()  # the webhook, later, changes nothing
    [again] = cards()
    assert again.saved_at == saved.saved_at
    paths = [str(c.get("path", "")) for c in webhooks.calls()]
    assert any(p.startswith("/v1/checkout/sessions") for p in paths)
    assert not any(p.startswith("/v1/payment_intents") for p in paths)


def test_the_webhook_alone_records_the_card(app, admin, clinician, gp, webhooks):
    allow(admin, gp)
    call = start_call(clinician, gp)
    patient = join(app, call)
    choose(patient, call)
    [row] = cards()
    webhooks.pay(row.setup_session_id, "4242424242424242")
    webhooks.wait_for_webhooks()
    process_received()
    [saved] = cards()
    assert saved.is_usable and saved.last4 == "4242"
    assert patient.get(f"/join/{call.guest_token}").status_code == 200  # no longer asked


def test_skipping_goes_to_the_call(app, admin, clinician, gp):
    allow(admin, gp)
    call = start_call(clinician, gp)
    patient = join(app, call)
    skipped = choose(patient, call, choice="skip", consent=False)
    assert skipped.status_code == 303 and skipped.location == f"/join/{call.guest_token}"
    assert patient.get(skipped.location).status_code == 200
    assert cards() == []


def test_going_back_from_stripe_saves_nothing(app, admin, clinician, gp):
    allow(admin, gp)
    call = start_call(clinician, gp)
    patient = join(app, call)
    choose(patient, call)
    page = patient.get(f"{save_page(call)}?back=left").get_data(as_text=True)
    assert "You went back without saving a card" in page
    [row] = cards()
    back = patient.get(f"{save_page(call)}/done?session_id={row.setup_session_id}")
    assert back.location == f"/join/{call.guest_token}"
    assert not cards()[0].is_usable


def test_the_card_is_saved_on_the_clinicians_routed_account(
    app, admin, clinician, gp, stripe_control
):
    own = link_clinic(stripe_control, gp, "Dr Rivers Pty Ltd")
    doctor = db.session.scalar(select(User).filter_by(email="clinician@harbourside.example"))
    db.session.add(AccountRoute(clinic=gp, clinician=doctor, link=own))
    db.session.commit()
    _, _, card = save_a_card(app, admin, clinician, gp, stripe_control)
    assert card.account_id == own.account_id != live_link(gp).account_id
    assert card.is_usable


def test_a_setup_event_from_another_account_is_ignored(app, admin, clinician, gp, webhooks):
    allow(admin, gp)
    call = start_call(clinician, gp)
    patient = join(app, call)
    choose(patient, call)
    [row] = cards()
    db.session.execute(SavedCard.__table__.update().values(account_id="acct_someone_else"))
    db.session.commit()
    webhooks.pay(row.setup_session_id, "4242424242424242")
    webhooks.wait_for_webhooks()
    process_received()
    assert not cards()[0].is_usable
    ignored = [e for e in received("checkout.session.completed")]
    assert ignored and all(e.state == EventState.IGNORED for e in ignored)


def test_another_calls_guest_cannot_reach_the_save_flow(app, admin, clinician, gp):
    allow(admin, gp)
    call = start_call(clinician, gp)
    other = start_call(clinician, gp, title="Someone else")
    patient = join(app, call)
    assert patient.get(save_page(other)).location == f"/join/{other.guest_token}"
    token = csrf_token(patient, save_page(call))
    sent = patient.post(save_page(other), data={"csrf_token": token, "choice": "save"})
    assert sent.status_code == 303 and cards() == []
    assert app.test_client().get("/join/not-a-token/save-card").status_code == 404


def test_the_clinic_admin_removes_a_card_and_stripe_detaches_it(
    app, admin, clinician, gp, stripe_control
):
    _, _, card = save_a_card(app, admin, clinician, gp, stripe_control)
    page = admin.get(f"/client-payments/clinics/{gp.id}/saved-cards").get_data(as_text=True)
    assert "Pat Citizen" in page and "•••• 4242" in page
    token = csrf_token(admin, f"/client-payments/clinics/{gp.id}/saved-cards")
    removed = admin.post(
        f"/client-payments/clinics/{gp.id}/saved-cards/{card.id}/remove",
        data={"csrf_token": token},
    )
    assert removed.status_code == 303
    [gone] = cards()
    assert gone.removed_at is not None and gone.removed_cause == "by_admin"
    assert "payment.card_removed" in db.session.scalars(select(AuditEntry.action)).all()
    method = StripeApi.for_app().client.v1.payment_methods.retrieve(
        card.payment_method_id, options={"stripe_account": card.account_id}
    )
    assert method.customer is None


def test_another_clinics_card_is_a_404(app, admin, clinician, gp, stripe_control):
    _, _, card = save_a_card(app, admin, clinician, gp, stripe_control)
    other = db.session.scalar(select(Clinic).where(Clinic.id != gp.id))
    token = csrf_token(admin, f"/client-payments/clinics/{gp.id}/saved-cards")
    for clinic_id in (other.id, 99999):
        answer = admin.post(
            f"/client-payments/clinics/{clinic_id}/saved-cards/{card.id}/remove",
            data={"csrf_token": token},
        )
        assert answer.status_code in (403, 404)
    answer = admin.post(
        f"/client-payments/clinics/{gp.id}/saved-cards/99999/remove", data={"csrf_token": token}
    )
    assert answer.status_code == 404
    assert clinician.get(f"/client-payments/clinics/{gp.id}/saved-cards").status_code in (
        403,
        404,
    )
    assert cards()[0].is_usable
    assert db.session.get(Call, card.call_id) is not None


# Charging a saved card: the clinician's tool, during or after the call.


def charge(clinician, call, card, amount="45.00", description="Consultation", key=None):
    page = clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    assert "Charge saved card" in page
    key = key or KEY_FIELD.search(page).group(1)
    data = {
        "csrf_token": CSRF_FIELD.search(page).group(1),
        "card": card.id,
        "amount": amount,
        "description": description,
        "request_key": key,
    }
    return clinician.post(f"/calls/{call.id}/saved-cards/charge", data=data)


def end_call(clinician, call):
    token = csrf_token(clinician, f"/calls/{call.id}")
    assert clinician.post(f"/calls/{call.id}/end", data={"csrf_token": token}).status_code == 303


def charges() -> list[PaymentRequest]:
    db.session.rollback()
    return list(db.session.scalars(select(PaymentRequest).order_by(PaymentRequest.id)))


def emails() -> list[OutboundEmail]:
    db.session.rollback()
    return list(db.session.scalars(select(OutboundEmail).order_by(OutboundEmail.id)))


def test_the_clinician_charges_a_saved_card_after_the_call(
    app, admin, clinician, gp, stripe_control
):
    call, _, card = save_a_card(app, admin, clinician, gp, stripe_control)
    end_call(clinician, call)
    page = clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    assert "Pat Citizen · Visa •••• 4242" in page
    sent = charge(clinician, call, card)
    assert sent.status_code == 303
    [paid] = charges()
    assert paid.state == PaymentState.PAID and paid.off_session and paid.amount == 4500
    assert paid.saved_card_id == card.id and paid.checkout_session_id is None
    assert paid.stripe_account_id == card.account_id and paid.card_last4 == "4242"
    [receipt] = emails()
    assert receipt.recipient == "pat@example.org" and "A$45.00" in receipt.body_text
    screen = clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    assert "Paid: A$45.00 charged to the saved card." in screen
    assert "data-off-session" in screen
    again = charge(clinician, call, card, key=paid.request_key)  # a double click
    assert again.status_code == 303 and len(charges()) == 1
    intents = [c for c in stripe_control.calls() if c.get("path") == "/v1/payment_intents"]
    assert intents and len({c.get("idempotency_key") for c in intents}) == 1


def test_a_declined_saved_card_fails_the_request(app, admin, clinician, gp, stripe_control):
    call, _, card = save_a_card(app, admin, clinician, gp, stripe_control, "4000000000000341")
    charge(clinician, call, card)
    [failed] = charges()
    assert failed.state == PaymentState.FAILED and failed.last_decline
    assert "Declined:" in clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    assert emails() == []


def test_a_card_that_needs_its_holder_waits_then_the_patient_confirms(
    app, admin, clinician, gp, webhooks
):
    call, _, card = save_a_card(app, admin, clinician, gp, webhooks)
    webhooks.card_behaves_as(card.payment_method_id, "4000002760003184")
    charge(clinician, call, card)
    [waiting] = charges()
    assert waiting.state == PaymentState.REQUESTED and waiting.payment_intent_id
    [asked] = emails()
    assert asked.recipient == "pat@example.org"
    link = LINK.search(asked.body_text).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    browser = app.test_client()  # the patient, from the email: no guest link needed
    page = browser.get(f"/{path}").get_data(as_text=True)
    assert "Confirm with my bank" in page and "A$45.00" in page
    token = CSRF_FIELD.search(page).group(1)
    to_bank = browser.post(f"/{path}", data={"csrf_token": token})
    assert to_bank.status_code == 303 and waiting.payment_intent_id in to_bank.location
    answer = webhooks.authenticate_payment(waiting.payment_intent_id, completed=True)
    back = answer["next_url"].split("://", 1)[1].split("/", 1)[1]
    done = browser.get(f"/{back}")
    assert done.status_code == 303
    [paid] = charges()
    assert paid.state == PaymentState.PAID
    assert "Paid. Thank you" in browser.get(done.location).get_data(as_text=True)
    assert [e.recipient for e in emails()] == ["pat@example.org", "pat@example.org"]
    webhooks.wait_for_webhooks()
    process_received()
    assert charges()[0].state == PaymentState.PAID


def test_a_patient_who_fails_the_bank_check_fails_the_payment(app, admin, clinician, gp, webhooks):
    call, _, card = save_a_card(app, admin, clinician, gp, webhooks)
    webhooks.card_behaves_as(card.payment_method_id, "4000002760003184")
    charge(clinician, call, card)
    [asked] = emails()
    path = LINK.search(asked.body_text).group(0).split("://", 1)[1].split("/", 1)[1]
    browser = app.test_client()
    token = CSRF_FIELD.search(browser.get(f"/{path}").get_data(as_text=True)).group(1)
    browser.post(f"/{path}", data={"csrf_token": token})
    webhooks.authenticate_payment(charges()[0].payment_intent_id, completed=False)
    webhooks.wait_for_webhooks()
    process_received()  # the webhook tells first
    [failed] = charges()
    assert failed.state == PaymentState.FAILED
    assert "did not go through" in browser.get(f"/{path}").get_data(as_text=True)
    assert browser.get("/pay/confirm/not-a-signed-link").status_code == 404


def test_a_charge_the_patient_never_confirms_expires_with_its_link(
    app, admin, clinician, gp, stripe_control
):
    call, _, card = save_a_card(app, admin, clinician, gp, stripe_control)
    stripe_control.card_behaves_as(card.payment_method_id, "4000002760003184")
    charge(clinician, call, card)
    [waiting] = charges()
    assert waiting.state == PaymentState.REQUESTED
    assert reconcile(StripeApi.for_app(), timedelta(0), timedelta(0)) == 0  # still waiting
    db.session.execute(
        PaymentRequest.__table__.update().values(expires_at=utcnow() - timedelta(minutes=1))
    )
    db.session.commit()
    assert reconcile(StripeApi.for_app(), timedelta(0), timedelta(0)) == 1
    assert charges()[0].state == PaymentState.EXPIRED
    [asked] = emails()
    path = LINK.search(asked.body_text).group(0).split("://", 1)[1].split("/", 1)[1]
    page = app.test_client().get(f"/{path}").get_data(as_text=True)
    assert "Nothing to confirm" in page and "Confirm with my bank" not in page


def test_a_card_of_a_removed_account_is_not_charged(app, admin, clinician, gp, stripe_control):
    call, _, card = save_a_card(app, admin, clinician, gp, stripe_control)
    link = live_link(gp)
    second = link_clinic(stripe_control, gp, "Second Pty Ltd")
    link.state, link.is_default, second.is_default = "removed", False, True
    db.session.commit()
    refused = charge(clinician, call, card)
    assert charges() == []
    page = clinician.get(refused.location).get_data(as_text=True)
    assert "no longer linked to the clinic" in page


def test_permission_attacks_on_charging(app, admin, clinician, gp, stripe_control):
    call, patient, card = save_a_card(app, admin, clinician, gp, stripe_control)
    other = start_call(clinician, gp, title="Another")
    page = clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    data = {
        "csrf_token": CSRF_FIELD.search(page).group(1),
        "card": card.id,
        "amount": "45.00",
        "description": "x",
        "request_key": KEY_FIELD.search(page).group(1),
    }
    assert clinician.post(f"/calls/{other.id}/saved-cards/charge", data=data).status_code == 404
    theirs = {**data, "csrf_token": csrf_token(patient, f"/join/{call.guest_token}")}
    assert patient.post(f"/calls/{call.id}/saved-cards/charge", data=theirs).status_code in (
        302,
        401,
        403,
    )
    no_csrf = {k: v for k, v in data.items() if k != "csrf_token"}
    assert clinician.post(f"/calls/{call.id}/saved-cards/charge", data=no_csrf).status_code == 400
    for amount in ("0.10", "abc", "1000000.00"):
        bad = clinician.post(
            f"/calls/{call.id}/saved-cards/charge", data={**data, "amount": amount}
        )
        assert bad.status_code == 303
    for card_id in ("99999999999999999999999", "²", "-1", str(card.id + 1000)):
        bad = clinician.post(f"/calls/{call.id}/saved-cards/charge", data={**data, "card": card_id})
        assert bad.status_code == 404
    assert charges() == []


def test_a_charge_event_from_another_account_is_ignored(app, admin, clinician, gp, webhooks):
    call, _, card = save_a_card(app, admin, clinician, gp, webhooks)
    webhooks.card_behaves_as(card.payment_method_id, "4000002760003184")
    charge(clinician, call, card)
    [waiting] = charges()
    assert waiting.state == PaymentState.REQUESTED and waiting.payment_intent_id
    # Another account's event naming the same PaymentIntent and request changes nothing.
    stranger = webhooks.connected_account(app.config["STRIPE_CLIENT_ID"], business_name="X")
    db.session.execute(PaymentRequest.__table__.update().values(stripe_account_id=stranger))
    db.session.commit()
    webhooks.wait_for_webhooks()
    process_received()
    events = received("payment_intent.payment_failed")
    assert events and all(e.state == EventState.IGNORED for e in events)
    assert charges()[0].state == PaymentState.REQUESTED


def test_cards_older_than_the_setting_are_detached_by_the_beat_task(
    app, admin, clinician, gp, stripe_control
):
    _, _, card = save_a_card(app, admin, clinician, gp, stripe_control)
    assert app.config["SAVED_CARD_DAYS"] == 90
    assert detach_old_saved_cards.run() == 0  # saved today: kept
    assert cards()[0].is_usable
    db.session.execute(SavedCard.__table__.update().values(saved_at=utcnow() - timedelta(days=91)))
    db.session.commit()
    assert detach_old_saved_cards.run() == 1
    [gone] = cards()
    assert gone.removed_at is not None and gone.removed_cause == "expired"
    method = StripeApi.for_app().client.v1.payment_methods.retrieve(
        card.payment_method_id, options={"stripe_account": card.account_id}
    )
    assert method.customer is None
    assert detach_old_saved_cards.run() == 0  # once


def test_the_back_office_shows_which_payments_were_off_session(
    app, admin, clinician, gp, stripe_control
):
    call, _, card = save_a_card(app, admin, clinician, gp, stripe_control)
    charge(clinician, call, card, description="After the call")
    page = admin.get("/payments/?from=&to=").get_data(as_text=True)
    assert "After the call" in page and "data-off-session" in page
    response = admin.get("/payments/export.csv?from=&to=")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    [row] = rows
    assert row["Description"] == "After the call" and row["Off-session"] == "Yes"
    [paid] = charges()
    assert admin.get(f"/payments/{paid.id}").status_code == 200


def test_an_off_session_payment_is_refunded_like_any_other(
    app, admin, clinician, gp, stripe_control
):
    call, _, card = save_a_card(app, admin, clinician, gp, stripe_control)
    charge(clinician, call, card)
    [paid] = charges()
    assert refund(admin, paid).status_code == 303
    [refunded] = charges()
    assert refunded.state == PaymentState.REFUNDED and refunded.amount_refunded == 4500
