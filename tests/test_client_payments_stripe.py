"""Client Payments: link, show, edit and remove a clinic's Stripe account.

The real ``stripe`` library talks over HTTP to the Stripe stand-in; the stand-in's webhooks
reach vcpay over HTTP too, and each stored event is then processed as a worker would.
"""

import re
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import stripe
from sqlalchemy import select, text

from tests import factories
from tests.conftest import csrf_token, sign_in
from tests.stripe_standin import process_received, received, wait_for_events
from vcpay.audit.models import AuditEntry
from vcpay.client_payments.models import LinkState, RemovalCause, StripeLink
from vcpay.client_payments.stripe_link import when_link_removed
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.integrations.stripe_api import forget_clients
from vcpay.mail.models import OutboundEmail
from vcpay.people.demo import seed_demo
from vcpay.people.models import Clinic, ClinicMembership, ClinicRole
from vcpay.webhooks import services
from vcpay.webhooks.models import EventState

CLINIC_ADMIN = "clinicadmin@harbourside.example"


@pytest.fixture
def gp(app):
    organisation = seed_demo(enable_gateway=True)
    db.session.commit()
    return next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")


def clinic_page(client, clinic) -> str:
    return client.get(f"/client-payments/clinics/{clinic.id}").get_data(as_text=True)


def go_to_stripe(client, clinic):
    token = csrf_token(client, f"/client-payments/clinics/{clinic.id}")
    return client.post(
        f"/client-payments/clinics/{clinic.id}/stripe/connect", data={"csrf_token": token}
    )


def come_back(client, answer: dict[str, str]):
    response = client.get("/client-payments/stripe/callback", query_string=answer)
    assert response.status_code == 303
    return response


def link_account(client, control, clinic, **choice) -> dict[str, str]:
    """Go to Stripe, consent there, come back; returns the answer Stripe sent back."""
    started = go_to_stripe(client, clinic)
    assert started.status_code == 303
    answer = control.consent(started.location, **choice)
    come_back(client, answer)
    return answer


def links() -> list[StripeLink]:
    db.session.rollback()
    return list(db.session.scalars(select(StripeLink).order_by(StripeLink.id)))


def flash_after(client, response) -> str:
    return client.get(response.location).get_data(as_text=True)


def test_go_to_stripe_asks_for_an_existing_account_with_a_signed_state(
    app, client, gp, stripe_control
):
    sign_in(client, CLINIC_ADMIN)
    assert "Go to Stripe" in clinic_page(client, gp)
    response = go_to_stripe(client, gp)
    assert response.status_code == 303
    address = urlsplit(response.location)
    assert f"{address.scheme}://{address.netloc}" == stripe_control.base
    assert address.path == "/oauth/authorize"
    query = {k: v[0] for k, v in parse_qs(address.query).items()}
    assert query["scope"] == "read_write"
    assert query["stripe_landing"] == "login"
    assert query["client_id"] == app.config["STRIPE_CLIENT_ID"]
    assert query["redirect_uri"] == "http://127.0.0.1:5000/client-payments/stripe/callback"
    assert len(query["state"]) > 40
    consent_page = requests.get(response.location, timeout=5)  # Stripe's page, in the stand-in
    assert consent_page.status_code == 200


def test_link_show_edit_in_stripe_and_remove(app, client, gp, webhooks):
    account = webhooks.account(business_name="Harbourside GP Clinic Pty Ltd", country="AU")
    sign_in(client, CLINIC_ADMIN)
    answer = link_account(client, webhooks, gp, account=account)
    assert "code" in answer

    [link] = links()
    assert (link.account_id, link.state, link.clinic_id) == (account, LinkState.LINKED, gp.id)
    assert link.linked_by.email == CLINIC_ADMIN
    page = clinic_page(client, gp)
    assert "Linked Stripe account Harbourside GP Clinic Pty Ltd" in page
    assert account in page and "AU" in page
    assert 'Card payments</dt>\n    <dd><span class="badge on">Enabled' in page
    dashboard = re.search(r'href="([^"]+)"[^>]*>Edit in Stripe', page).group(1)
    assert dashboard == f"{webhooks.base}/dashboard/{account}"
    audit = db.session.scalars(select(AuditEntry).filter_by(action="stripe.linked")).all()
    assert [(a.clinic_id, a.details["account"]) for a in audit] == [(gp.id, account)]

    # The admin edits the account in Stripe's dashboard: charges off, something to provide.
    webhooks.update_account(
        account,
        charges_enabled=False,
        currently_due=["external_account"],
        disabled_reason="requirements.past_due",
    )
    wait_for_events("account.updated")
    process_received()
    page = clinic_page(client, gp)
    assert "Not enabled" in page and "Patients cannot pay until Stripe enables charges" in page
    assert "external account" in page

    confirm = client.get(f"/client-payments/clinics/{gp.id}/stripe/remove").get_data(as_text=True)
    assert "Remove the Stripe account from Harbourside GP Clinic?" in confirm
    assert links()[0].is_live  # looking is not removing
    removed_signals = []
    when_link_removed(app, lambda removed, stripe_api: removed_signals.append(removed))
    token = csrf_token(client, f"/client-payments/clinics/{gp.id}/stripe/remove")
    done = client.post(
        f"/client-payments/clinics/{gp.id}/stripe/remove", data={"csrf_token": token}
    )
    assert f"Stripe account {account} removed" in flash_after(client, done)
    [link] = links()
    assert (link.state, link.removal_cause, link.removed_by.email) == (
        LinkState.REMOVED,
        RemovalCause.BY_ADMIN,
        CLINIC_ADMIN,
    )
    assert [s.id for s in removed_signals] == [link.id]  # payment requests are settled on this
    assert webhooks.accounts()[account]["connected"] is False  # deauthorized at Stripe
    assert "Go to Stripe" in clinic_page(client, gp)

    # Stripe tells vcpay about the disconnection it asked for: nothing more to do.
    wait_for_events("account.application.deauthorized")
    process_received()
    assert [e.state for e in received("account.application.deauthorized")] == [EventState.PROCESSED]
    assert len(links()) == 1


def test_disconnecting_in_the_stripe_dashboard_removes_the_link(app, client, gp, webhooks):
    account = webhooks.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, webhooks, gp, account=account)
    webhooks.disconnect(account)
    wait_for_events("account.application.deauthorized")
    process_received()
    [link] = links()
    assert (link.state, link.removal_cause, link.removed_by) == (
        LinkState.REMOVED,
        RemovalCause.IN_STRIPE,
        None,
    )
    told = db.session.scalars(select(OutboundEmail)).all()
    assert [e.recipient for e in told] == [CLINIC_ADMIN]
    assert "disconnected from vcpay in Stripe's dashboard" in told[0].body_text
    assert "Go to Stripe" in clinic_page(client, gp)


def test_a_late_disconnection_event_does_not_remove_a_newer_link(app, client, gp, webhooks):
    account = webhooks.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    webhooks.webhook_fault("hold", count=10)
    link_account(client, webhooks, gp, account=account)
    webhooks.disconnect(account)  # disconnected in Stripe ...
    db.session.execute(
        StripeLink.__table__.update().values(state="removed", removal_cause="in_stripe")
    )
    db.session.commit()
    link_account(client, webhooks, gp, account=account)  # ... and linked again
    webhooks.release_held("reverse")
    wait_for_events("account.application.deauthorized")
    process_received()
    assert [link.state for link in links()] == [LinkState.REMOVED, LinkState.LINKED]


def test_account_updates_arriving_out_of_order_leave_the_latest_state(app, client, gp, webhooks):
    account = webhooks.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, webhooks, gp, account=account)
    webhooks.webhook_fault("hold", count=2)
    webhooks.update_account(account, charges_enabled=False)
    webhooks.update_account(account, charges_enabled=True, payouts_enabled=False)
    webhooks.release_held("reverse")
    wait_for_events("account.updated", 2)
    process_received()
    [link] = links()
    assert (link.charges_enabled, link.payouts_enabled) == (True, False)


def test_a_duplicated_account_event_is_stored_once(app, client, gp, webhooks):
    account = webhooks.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, webhooks, gp, account=account)
    webhooks.webhook_fault("duplicate")
    webhooks.update_account(account, charges_enabled=False)
    webhooks.wait_for_webhooks()
    deliveries = [d for d in webhooks.deliveries() if d["type"] == "account.updated"]
    assert len(deliveries) == 2 and {d["status_code"] for d in deliveries} == {200}
    assert len(received("account.updated")) == 1


@pytest.mark.parametrize("fault", ["bad_signature", "old_timestamp"])
def test_a_badly_signed_delivery_is_refused_and_stripe_retries(app, client, gp, webhooks, fault):
    account = webhooks.account(business_name="Harbourside GP Clinic Pty Ltd")
    webhooks.webhook_fault(fault)
    webhooks.update_account(account, email="accounts@harbourside.example")
    deadline = time.monotonic() + 10
    while not [d for d in webhooks.deliveries() if d["status_code"] == 200]:
        assert time.monotonic() < deadline, "the retry did not arrive"
        time.sleep(0.05)
    codes = [d["status_code"] for d in webhooks.deliveries()]
    assert codes == [400, 200]  # refused, then Stripe's retry is signed properly
    assert len(received()) == 1


def test_an_account_update_is_retried_while_stripe_fails(app, client, gp, webhooks):
    account = webhooks.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, webhooks, gp, account=account)
    webhooks.update_account(account, charges_enabled=False)
    wait_for_events("account.updated")
    webhooks.fault(path_prefix="/v1/accounts", status=500, count=5)
    [event] = received("account.updated")
    with pytest.raises(services.ProcessingFailed):
        services.process(event.id)
    db.session.refresh(event)
    assert (event.state, event.attempts) == (EventState.RECEIVED, 1)
    assert "Stripe failed (500)" in event.last_error
    assert links()[0].charges_enabled is True  # nothing half-applied
    webhooks.clear_faults()
    services.process(event.id)
    assert links()[0].charges_enabled is False


# Refresh from Stripe: the admin asks Stripe now instead of waiting for an event.


def refresh(client, clinic):
    token = csrf_token(client, f"/client-payments/clinics/{clinic.id}")
    return client.post(
        f"/client-payments/clinics/{clinic.id}/stripe/refresh", data={"csrf_token": token}
    )


def test_refresh_from_stripe_shows_what_stripe_says_now(app, client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, stripe_control, gp, account=account)
    # Changed in Stripe's dashboard; its event goes nowhere here.
    stripe_control.update_account(account, charges_enabled=False, currently_due=["tos_acceptance"])
    assert links()[0].charges_enabled is True
    page = flash_after(client, refresh(client, gp))
    assert "Account details read again from Stripe." in page
    assert "Not enabled" in page and "tos acceptance" in page
    [link] = links()
    assert (link.charges_enabled, link.requirements_due) == (False, ["tos_acceptance"])


def test_refresh_of_an_account_disconnected_in_stripe_says_so_and_changes_nothing(
    client, gp, stripe_control
):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, stripe_control, gp, account=account)
    stripe_control.disconnect(account)  # its event goes nowhere here
    before = links()[0].refreshed_at
    page = flash_after(client, refresh(client, gp))
    assert "Stripe says the account is no longer connected to vcpay" in page
    [link] = links()
    assert (link.state, link.refreshed_at) == (LinkState.LINKED, before)


def test_refresh_while_stripe_is_unreachable_says_so_and_changes_nothing(
    app, client, gp, stripe_control
):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, stripe_control, gp, account=account)
    stripe_control.update_account(account, charges_enabled=False)
    app.config.update(STRIPE_API_BASE="http://127.0.0.1:1", STRIPE_TIMEOUT_SECONDS=1.0)
    forget_clients()
    page = flash_after(client, refresh(client, gp))
    # One sentence in the reader's language, not the adapter's note of its call.
    assert "Could not read the account from Stripe: Stripe could not be reached." in page
    assert "to read the account" not in page
    assert links()[0].charges_enabled is True


def test_refresh_or_remove_without_a_link_changes_nothing(client, gp, stripe_control):
    sign_in(client, CLINIC_ADMIN)
    refreshed = refresh(client, gp)
    assert refreshed.status_code == 303
    assert "read again" not in flash_after(client, refreshed)
    removal = client.get(f"/client-payments/clinics/{gp.id}/stripe/remove")
    assert removal.status_code == 303
    assert "This clinic has no linked Stripe account." in flash_after(client, removal)
    assert links() == []


def test_stripe_refusing_to_disconnect_keeps_the_link(app, client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, stripe_control, gp, account=account)
    stripe_control.fault(path_prefix="/oauth/deauthorize", status=400)
    token = csrf_token(client, f"/client-payments/clinics/{gp.id}/stripe/remove")
    done = client.post(
        f"/client-payments/clinics/{gp.id}/stripe/remove", data={"csrf_token": token}
    )
    assert "Stripe refused to disconnect the account, so it is still linked" in flash_after(
        client, done
    )
    assert [link.state for link in links()] == [LinkState.LINKED]
    assert stripe_control.accounts()[account]["connected"] is True


# Every way linking can fail: a clear message, and nothing stored.


def failed_linking(client, response) -> str:
    page = flash_after(client, response)
    assert links() == [] or all(not link.is_live for link in links())
    return page


def test_denying_access_on_stripe_links_nothing(client, gp, stripe_control):
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, decision="deny")
    assert answer["error"] == "access_denied"
    page = failed_linking(client, come_back(client, answer))
    assert "Linking was cancelled on Stripe, so no account was linked." in page


def test_an_answer_without_a_code_links_nothing(client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    del answer["code"]
    page = failed_linking(client, come_back(client, answer))
    assert "Stripe sent no authorisation back, so no account was linked." in page


def test_an_answer_after_the_gateway_was_switched_off_links_nothing(client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    gp.gateway_enabled_at = None
    db.session.commit()
    page = failed_linking(client, come_back(client, answer))
    assert "The Payment Gateway is not switched on for this clinic." in page
    assert stripe_control.accounts()[account]["connected"] is False  # the code never exchanged


def test_an_answer_for_an_account_linked_meanwhile_in_another_tab_changes_nothing(
    client, gp, stripe_control
):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    late_tab = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    link_account(client, stripe_control, gp, account=account)  # the other tab, finished first
    page = flash_after(client, come_back(client, late_tab))
    assert "This clinic is already linked to that Stripe account." in page
    assert [(link.account_id, link.state) for link in links()] == [(account, LinkState.LINKED)]
    page = clinic_page(client, gp)
    assert "Go to Stripe" not in page and "Link another Stripe account" in page


def test_an_answer_for_another_account_adds_it_beside_the_first(client, gp, stripe_control):
    """A clinic may take payments into several accounts: a second tab's account is added,
    and the first stays the clinic's default."""
    first = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    second = stripe_control.account(business_name="Another Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    late_tab = stripe_control.consent(go_to_stripe(client, gp).location, account=second)
    link_account(client, stripe_control, gp, account=first)
    page = flash_after(client, come_back(client, late_tab))
    assert "Linked Stripe account Another Pty Ltd" in page
    assert [(link.account_id, link.is_default) for link in links()] == [
        (first, True),
        (second, False),
    ]


def test_stripe_refusing_the_code_exchange_links_nothing(app, client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    stripe_control.fault(path_prefix="/oauth/token", status=400)
    page = failed_linking(client, come_back(client, answer))
    assert "Stripe refused to link the account:" in page


def test_a_forged_state_links_nothing(client, gp, stripe_control):
    account = stripe_control.account(business_name="Mallory's Clinic")
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    answer["state"] = answer["state"][:-4] + "AAAA"
    page = failed_linking(client, come_back(client, answer))
    assert "The answer from Stripe could not be checked" in page


def test_an_expired_state_links_nothing(app, client, gp, stripe_control):
    app.config["STRIPE_OAUTH_STATE_MINUTES"] = 0
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    time.sleep(1.1)
    page = failed_linking(client, come_back(client, answer))
    assert "came back more than 0 minutes after you left" in page


def test_a_replayed_answer_links_nothing_more(client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    answer = link_account(client, stripe_control, gp, account=account)
    assert len(links()) == 1
    db.session.execute(StripeLink.__table__.update().values(state="removed"))
    db.session.commit()
    page = flash_after(client, come_back(client, answer))
    assert "This answer from Stripe was already used" in page
    assert [link.state for link in links()] == [LinkState.REMOVED]


def held_attempts(app):
    """The test's own transaction on the OAuth attempts: an answer's claim waits behind it."""
    connection = db.engine.connect()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT id FROM stripe_oauth_attempts FOR UPDATE")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")  # SQLite: the write lock itself
    return connection


def claims_waiting(count: int) -> None:
    """Until ``count`` requests wait on the test's lock (PostgreSQL shows who waits; SQLite
    does not, so there a moment is given instead)."""
    if db.engine.dialect.name != "postgresql":
        time.sleep(1.0)
        return
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 20
    while db.session.scalar(query) < count:
        assert time.monotonic() < deadline, "the answers never reached their claim"
        db.session.rollback()
        time.sleep(0.05)
    db.session.rollback()


def test_the_same_answer_twice_at_once_links_once(app, client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    reload = app.test_client()  # the same browser: its session, another request at once
    cookie = client.get_cookie("vcpay_session")
    reload.set_cookie("vcpay_session", cookie.value, domain=cookie.domain)
    outcomes: dict[str, str] = {}

    def come_back_in(name: str, browser) -> None:
        with app.app_context():
            response = browser.get("/client-payments/stripe/callback", query_string=answer)
            outcomes[name] = browser.get(response.location).get_data(as_text=True)

    lock = held_attempts(app)
    tabs = [
        threading.Thread(target=come_back_in, args=("first", client)),
        threading.Thread(target=come_back_in, args=("reload", reload)),
    ]
    for tab in tabs:
        tab.start()
    claims_waiting(2)
    lock.rollback()
    lock.close()
    for tab in tabs:
        tab.join(30)
    said = sorted(outcomes.values(), key=lambda page: "already used" in page)
    assert "Linked Stripe account Harbourside GP Clinic Pty Ltd" in said[0]
    assert "This answer from Stripe was already used" in said[1]
    assert [(link.account_id, link.state) for link in links()] == [(account, LinkState.LINKED)]
    exchanges = [c for c in stripe_control.call("GET", "calls") if c["path"] == "/oauth/token"]
    assert len(exchanges) == 1


def test_an_answer_started_in_another_browser_links_nothing(app, client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    other_browser = app.test_client()
    sign_in(other_browser, CLINIC_ADMIN)
    page = failed_linking(other_browser, come_back(other_browser, answer))
    assert "Linking was started in another browser or sign-in" in page


@pytest.mark.parametrize("code", ["used", "unknown"])
def test_a_used_or_unknown_code_links_nothing(app, client, gp, stripe_control, code):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    if code == "used":
        platform = stripe.StripeClient(
            app.config["STRIPE_SECRET_KEY"],
            base_addresses={"api": stripe_control.base, "connect": stripe_control.base},
        )
        platform.oauth.token({"grant_type": "authorization_code", "code": answer["code"]})
    else:
        answer["code"] = "ac_NotAStripeCode"
    page = failed_linking(client, come_back(client, answer))
    assert "Stripe did not accept the authorisation (it had expired or was already used)" in page


def test_stripe_unreachable_links_nothing(app, client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    app.config.update(STRIPE_API_BASE="http://127.0.0.1:1", STRIPE_TIMEOUT_SECONDS=1.0)
    forget_clients()
    page = failed_linking(client, come_back(client, answer))
    assert "Stripe could not be reached to finish linking, so no account was linked." in page


def test_an_account_of_another_organisation_is_refused(app, client, gp, stripe_control):
    account = stripe_control.account(business_name="Bayside Medical Pty Ltd")
    other = factories.organisation("Bayside Medical", "Bayside Clinic").clinics[0]
    other.gateway_enabled_at = utcnow()
    db.session.add(
        StripeLink(clinic=other, account_id=account, linked_at=utcnow(), refreshed_at=utcnow())
    )
    db.session.commit()
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    page = flash_after(client, come_back(client, answer))
    assert "already linked to a clinic of another organisation" in page
    assert [link.clinic_id for link in links()] == [other.id]


def test_an_account_shared_within_the_organisation_is_linked_with_a_notice(
    app, client, gp, stripe_control
):
    account = stripe_control.account(business_name="Harbourside Health Pty Ltd")
    physio = db.session.scalar(select(Clinic).filter_by(name="Harbourside Physiotherapy"))
    physio.gateway_enabled_at = utcnow()
    db.session.commit()
    sign_in(client, "manager@harbourside.example")
    link_account(client, stripe_control, physio, account=account)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    page = flash_after(client, come_back(client, answer))
    assert "also linked to Harbourside Physiotherapy" in page
    assert sorted(link.clinic_id for link in links() if link.is_live) == sorted([gp.id, physio.id])

    # Removing it from one clinic keeps the account connected for the other.
    token = csrf_token(client, f"/client-payments/clinics/{gp.id}/stripe/remove")
    done = client.post(
        f"/client-payments/clinics/{gp.id}/stripe/remove", data={"csrf_token": token}
    )
    assert "stays connected to vcpay for Harbourside Physiotherapy" in flash_after(client, done)
    assert stripe_control.accounts()[account]["connected"] is True


def test_removing_when_stripe_is_unreachable_changes_nothing(app, client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, stripe_control, gp, account=account)
    app.config.update(STRIPE_API_BASE="http://127.0.0.1:1", STRIPE_TIMEOUT_SECONDS=1.0)
    forget_clients()
    token = csrf_token(client, f"/client-payments/clinics/{gp.id}/stripe/remove")
    done = client.post(
        f"/client-payments/clinics/{gp.id}/stripe/remove", data={"csrf_token": token}
    )
    assert "Stripe could not be reached, so the account is still linked" in flash_after(
        client, done
    )
    assert [link.state for link in links()] == [LinkState.LINKED]


def test_removing_an_account_already_disconnected_in_stripe_just_removes_the_link(
    client, gp, stripe_control
):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, stripe_control, gp, account=account)
    stripe_control.disconnect(account)  # its webhook is not delivered anywhere here
    token = csrf_token(client, f"/client-payments/clinics/{gp.id}/stripe/remove")
    done = client.post(
        f"/client-payments/clinics/{gp.id}/stripe/remove", data={"csrf_token": token}
    )
    assert "removed" in flash_after(client, done)
    assert [link.state for link in links()] == [LinkState.REMOVED]


# Who may see and change the link.


def test_a_clinician_cannot_see_or_change_the_link(app, client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    link_account(client, stripe_control, gp, account=account)
    client.post("/sign-out", data={"csrf_token": csrf_token(client, "/")})

    clinician = app.test_client()
    sign_in(clinician, "clinician@harbourside.example")
    assert clinician.get(f"/client-payments/clinics/{gp.id}").status_code == 403
    assert clinician.get(f"/client-payments/clinics/{gp.id}/stripe/remove").status_code == 403
    token = csrf_token(clinician, "/")
    for action in ("connect", "remove", "refresh"):
        response = clinician.post(
            f"/client-payments/clinics/{gp.id}/stripe/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 403, action
    assert [link.state for link in links()] == [LinkState.LINKED]
    assert account not in clinician.get("/client-payments/").get_data(as_text=True)


def test_an_admin_of_another_clinic_cannot_see_or_change_the_link(app, gp, stripe_control):
    bayside = factories.organisation("Bayside Medical", "Bayside Clinic").clinics[0]
    factories.clinic_person("admin@bayside.example", bayside, ClinicRole.CLINIC_ADMIN)
    db.session.commit()
    stranger = app.test_client()
    sign_in(stranger, "admin@bayside.example", factories.PASSWORD)
    assert stranger.get(f"/client-payments/clinics/{gp.id}").status_code == 404
    token = csrf_token(stranger, "/")
    for action in ("connect", "remove", "refresh"):
        response = stranger.post(
            f"/client-payments/clinics/{gp.id}/stripe/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 404, action


def test_the_callback_rechecks_the_persons_rights(app, client, gp, stripe_control):
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    sign_in(client, CLINIC_ADMIN)
    answer = stripe_control.consent(go_to_stripe(client, gp).location, account=account)
    db.session.execute(ClinicMembership.__table__.delete())  # no longer the clinic's admin
    db.session.commit()
    assert client.get("/client-payments/stripe/callback", query_string=answer).status_code == 404
    assert links() == []


def test_go_to_stripe_needs_the_gateway_on_and_a_form_token(app, client, gp, stripe_control):
    physio = db.session.scalar(select(Clinic).filter_by(name="Harbourside Physiotherapy"))
    sign_in(client, "manager@harbourside.example")
    page = clinic_page(client, physio)
    assert "Go to Stripe" not in page
    refused = go_to_stripe(client, physio)
    assert "not switched on for this clinic" in flash_after(client, refused)
    no_token = client.post(f"/client-payments/clinics/{gp.id}/stripe/connect")
    assert no_token.status_code == 400


def test_an_open_call_is_told_when_its_clinic_links_stripe_and_when_it_removes_it(
    app, client, gp, stripe_control
):
    from tests.payment_steps import CLINICIAN, kinds, kinds_after, latest_event, start_call

    clinician = app.test_client()
    sign_in(clinician, CLINICIAN)
    call = start_call(clinician, gp)
    ended = start_call(clinician, gp, "Earlier")
    token = csrf_token(clinician, f"/calls/{ended.id}")
    clinician.post(f"/calls/{ended.id}/end", data={"csrf_token": token})
    tools = clinician.get(f"/calls/{call.id}/tools").get_data(as_text=True)
    assert "has no Stripe account linked yet" in tools
    assert 'id="request-payment-form"' not in tools
    before, before_ended = latest_event(call), latest_event(ended)

    sign_in(client, CLINIC_ADMIN)
    account = stripe_control.account(business_name="Harbourside GP Clinic Pty Ltd")
    link_account(client, stripe_control, gp, account=account)
    assert kinds_after(call, before) == ["tools_changed"]
    assert "tools_changed" not in kinds(call, audience="everyone")  # the clinician's only
    assert kinds_after(ended, before_ended) == []  # nobody is looking at an ended call
    tools = clinician.get(f"/calls/{call.id}/tools").get_data(as_text=True)
    assert 'id="request-payment-form"' in tools
    assert "has no Stripe account linked yet" not in tools

    before = latest_event(call)
    token = csrf_token(client, f"/client-payments/clinics/{gp.id}/stripe/remove")
    client.post(f"/client-payments/clinics/{gp.id}/stripe/remove", data={"csrf_token": token})
    assert kinds_after(call, before) == ["tools_changed"]
    tools = clinician.get(f"/calls/{call.id}/tools").get_data(as_text=True)
    assert "has no Stripe account linked yet" in tools
