"""Several Stripe accounts per clinic: linking a second one through OAuth, naming them, the
default, routing a clinician's payments to an account, removing an account with routes, the
Payments page's account filter, and who may do any of it.

The real ``stripe`` library talks over HTTP to the Stripe stand-in; its webhooks reach vcpay
over HTTP and each stored event is processed as a worker would.
"""

import csv
import io
import re
from functools import partial

import pytest
import sqlalchemy as sa
import stripe
from flask_migrate import downgrade, upgrade
from sqlalchemy import select

from tests import factories, services
from tests.conftest import csrf_token, sign_in
from tests.ledger_rows import call_in, payment, sydney
from tests.payment_steps import (  # noqa: F401 - the fixtures
    CLINICIAN,
    ask,
    clinician_fixture,
    gp_fixture,
    join,
    requests_made,
    start_call,
)
from tests.stripe_standin import link_clinic, process_received, received
from tests.test_races import at_once
from vcpay import create_app
from vcpay.audit.models import AuditEntry
from vcpay.client_payments.models import AccountRoute, LinkState, StripeLink
from vcpay.client_payments.stripe_link import link_for, live_link
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.payments.models import PaymentState
from vcpay.payouts.models import Payout
from vcpay.people.models import ClinicRole
from vcpay.people.services import find_user_by_email
from vcpay.webhooks.models import EventState

CLINIC_ADMIN = "clinicadmin@harbourside.example"
PAGE = "/client-payments/clinics/{}"


def admin(app):
    browser = app.test_client()
    sign_in(browser, CLINIC_ADMIN)
    return browser


def post(browser, clinic, path: str, **data):
    token = csrf_token(browser, PAGE.format(clinic.id))
    return browser.post(PAGE.format(clinic.id) + path, data={"csrf_token": token, **data})


def flashed(browser, response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)
    return browser.get(response.location).get_data(as_text=True)


def live_links_of(clinic) -> list[StripeLink]:
    db.session.rollback()
    query = select(StripeLink).filter_by(clinic_id=clinic.id, state=LinkState.LINKED.value)
    return list(db.session.scalars(query.order_by(StripeLink.id)))


def actions(name: str) -> list[AuditEntry]:
    db.session.rollback()
    return list(db.session.scalars(select(AuditEntry).filter_by(action=name)))


@pytest.fixture
def second(app, gp, stripe_control):
    """A second account of the GP clinic, linked beside its default."""
    link = link_clinic(stripe_control, gp, display_name="Harbourside Physio Room Pty Ltd")
    db.session.commit()
    return link


def test_a_second_account_is_linked_through_stripe_and_the_same_one_is_refused(
    app, gp, stripe_control
):
    browser = admin(app)
    [default] = live_links_of(gp)
    account = stripe_control.account(business_name="Harbourside Skin Clinic Pty Ltd")
    page = browser.get(PAGE.format(gp.id)).get_data(as_text=True)
    assert "Link another Stripe account" in page
    started = post(browser, gp, "/stripe/connect")
    answer = stripe_control.consent(started.location, account=account)
    back = browser.get("/client-payments/stripe/callback", query_string=answer)
    assert "Linked Stripe account Harbourside Skin Clinic Pty Ltd" in flashed(browser, back)
    links = live_links_of(gp)
    assert [(link.account_id, link.is_default) for link in links] == [
        (default.account_id, True),
        (account, False),
    ]
    assert links[1].name == "Harbourside Skin Clinic Pty Ltd"  # named as Stripe names it
    page = browser.get(PAGE.format(gp.id)).get_data(as_text=True)
    assert "Stripe accounts" in page and page.count(">Default</span>") == 1
    listing = browser.get("/client-payments/").get_data(as_text=True)
    assert f"{default.label} (2 accounts in all)" in listing

    # The same account again, from another press of the button: refused, nothing added.
    started = post(browser, gp, "/stripe/connect")
    answer = stripe_control.consent(started.location, account=account)
    back = browser.get("/client-payments/stripe/callback", query_string=answer)
    assert "This clinic is already linked to that Stripe account." in flashed(browser, back)
    assert len(live_links_of(gp)) == 2
    assert [a.details["account"] for a in actions("stripe.linked")] == [account]


def test_rename_and_make_default_are_audited(app, gp, second):
    browser = admin(app)
    renamed = post(browser, gp, f"/stripe/{second.id}/rename", name="  Skin   room ")
    assert "The account is now called Skin room." in flashed(browser, renamed)
    made = post(browser, gp, f"/stripe/{second.id}/default")
    assert "Skin room is now the clinic&#39;s default account." in flashed(browser, made)
    first, now_second = live_links_of(gp)
    assert (first.is_default, now_second.is_default, now_second.name) == (
        False,
        True,
        "Skin room",
    )
    assert live_link(gp).id == second.id
    [rename] = actions("stripe.renamed")
    assert (rename.details["after"], rename.clinic_id) == ("Skin room", gp.id)
    [default] = actions("stripe.default_changed")
    assert default.details == {"account": second.account_id, "before": first.account_id}
    empty = post(browser, gp, f"/stripe/{second.id}/rename", name="   ")
    assert "Enter a name for the account." in flashed(browser, empty)
    assert live_links_of(gp)[1].name == "Skin room"


def test_a_routed_clinicians_payment_is_made_on_their_account_and_paid_by_its_webhook(
    app, gp, second, clinician, webhooks
):
    """The Checkout Session is created on the routed account; the webhook from that account
    pays the request, and the same kind of event from the clinic's other account is
    ignored."""
    default = live_link(gp)
    person = find_user_by_email(CLINICIAN)
    browser = admin(app)
    routed = post(browser, gp, "/routes", clinician=str(person.id), link=str(second.id))
    assert "now go to Harbourside Physio Room Pty Ltd" in flashed(browser, routed)
    assert link_for(gp, person).id == second.id
    [audit] = actions("stripe.route_set")
    assert audit.details == {"clinician": person.id, "account": second.account_id}

    call = start_call(clinician, gp)
    join(app, call)
    ask(clinician, call, "85.00", "Consultation")
    [request] = requests_made()
    assert request.stripe_account_id == second.account_id
    [session] = webhooks.sessions(account=second.account_id)
    assert session["id"] == request.checkout_session_id
    assert webhooks.sessions(account=default.account_id) == []

    # The clinic's default account pays a session whose metadata names the request.
    platform = stripe.StripeClient(
        app.config["STRIPE_SECRET_KEY"],
        base_addresses={"api": webhooks.base, "connect": webhooks.base},
    )
    metadata = {"payment_request": request.request_key}
    decoy = platform.v1.checkout.sessions.create(
        {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": "aud",
                        "unit_amount": 8500,
                        "product_data": {"name": "Consultation"},
                    },
                }
            ],
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata},
            "success_url": "http://127.0.0.1/done",
            "cancel_url": "http://127.0.0.1/left",
        },
        {"stripe_account": default.account_id},
    )
    webhooks.pay(decoy.id)
    webhooks.wait_for_webhooks()
    process_received()
    [request] = requests_made()
    assert request.state == PaymentState.REQUESTED
    [wrong] = received("checkout.session.completed")
    assert (wrong.account, wrong.state) == (default.account_id, EventState.IGNORED)

    webhooks.pay(request.checkout_session_id)
    webhooks.wait_for_webhooks()
    process_received()
    [request] = requests_made()
    assert request.state == PaymentState.PAID
    right = received("checkout.session.completed")[-1]
    assert (right.account, right.state) == (second.account_id, EventState.PROCESSED)

    # A clinician with no route asks in their own call: the default account's session, and
    # that account's webhook pays that request.
    factories.clinic_person("locum@harbourside.example", gp, ClinicRole.CLINICIAN)
    db.session.commit()
    locum = app.test_client()
    sign_in(locum, "locum@harbourside.example", factories.PASSWORD)
    locum_call = start_call(locum, gp, title="Sam Citizen, 11:00")
    join(app, locum_call, name="Sam Citizen")
    ask(locum, locum_call, "40.00", "Follow-up")
    routed_request, default_request = requests_made()
    assert default_request.stripe_account_id == default.account_id
    webhooks.pay(default_request.checkout_session_id)
    webhooks.wait_for_webhooks()
    process_received()
    routed_request, default_request = requests_made()
    assert (routed_request.state, default_request.state) == (PaymentState.PAID, PaymentState.PAID)
    completed = received("checkout.session.completed")
    assert [(e.account, e.state) for e in completed] == [
        (default.account_id, EventState.IGNORED),  # the decoy naming the routed request
        (second.account_id, EventState.PROCESSED),
        (default.account_id, EventState.PROCESSED),
    ]

    # The routed account's payout is read and listed with the clinic's payouts.
    webhooks.settle_balance(second.account_id)
    [made] = webhooks.pay_out(second.account_id)
    token = csrf_token(browser, f"/payouts/?clinic={gp.id}")
    browser.post(f"/payouts/clinics/{gp.id}/refresh", data={"csrf_token": token})
    db.session.rollback()
    payout = db.session.scalar(select(Payout).filter_by(payout_id=made["id"]))
    assert (payout.stripe_account_id, payout.amount) == (second.account_id, made["amount"])
    listing = browser.get(f"/payouts/?clinic={gp.id}").get_data(as_text=True)
    assert f"/payouts/{payout.id}" in listing


def test_an_unrouted_clinicians_payment_goes_to_the_default_and_a_removed_route_too(
    app, gp, second, clinician, stripe_control
):
    person = find_user_by_email(CLINICIAN)
    browser = admin(app)
    post(browser, gp, "/routes", clinician=str(person.id), link=str(second.id))
    [route] = db.session.scalars(select(AccountRoute))
    back = post(browser, gp, f"/routes/{route.id}/remove")
    assert "go to the clinic&#39;s default again" in flashed(browser, back)
    assert link_for(gp, person).id == live_link(gp).id != second.id
    assert [a.details["clinician"] for a in actions("stripe.route_removed")] == [person.id]
    call = start_call(clinician, gp)
    join(app, call)
    ask(clinician, call)
    [request] = requests_made()
    assert request.stripe_account_id == live_link(gp).account_id


def test_removing_a_routed_account_asks_where_its_routes_go(app, gp, second, stripe_control):
    person = find_user_by_email(CLINICIAN)
    third = link_clinic(stripe_control, gp, display_name="Harbourside Third Pty Ltd")
    db.session.commit()
    browser = admin(app)
    post(browser, gp, "/routes", clinician=str(person.id), link=str(second.id))
    remove_page = f"/stripe/{second.id}/remove"
    form = browser.get(PAGE.format(gp.id) + remove_page).get_data(as_text=True)
    assert "Where should their payments go instead?" in form
    assert "New default account" not in form  # not the default

    refused = post(browser, gp, remove_page)  # no choice made
    assert refused.status_code == 400
    assert second.id in [link.id for link in live_links_of(gp)]

    done = post(browser, gp, remove_page, routes_to=str(third.id))
    assert f"Stripe account {second.account_id} removed" in flashed(browser, done)
    db.session.rollback()
    [route] = db.session.scalars(select(AccountRoute))
    assert (route.clinician_id, route.link_id) == (person.id, third.id)
    assert link_for(gp, person).id == third.id
    again = browser.get(PAGE.format(gp.id) + remove_page)  # a stale page's link
    assert "That account was removed a moment ago." in flashed(browser, again)


def test_removing_the_default_asks_for_a_new_one_and_routes_can_go_to_it(
    app, gp, second, stripe_control
):
    person = find_user_by_email(CLINICIAN)
    default = live_link(gp)
    browser = admin(app)
    post(browser, gp, "/routes", clinician=str(person.id), link=str(default.id))
    remove_page = f"/stripe/{default.id}/remove"
    form = browser.get(PAGE.format(gp.id) + remove_page).get_data(as_text=True)
    assert "Which account becomes the default?" in form
    refused = post(browser, gp, remove_page, routes_to="default")  # no new default chosen
    assert refused.status_code == 400
    assert default.id in [link.id for link in live_links_of(gp)]
    done = post(browser, gp, remove_page, new_default=str(second.id), routes_to="default")
    assert f"Stripe account {default.account_id} removed" in flashed(browser, done)
    assert [(link.id, link.is_default) for link in live_links_of(gp)] == [(second.id, True)]
    assert db.session.scalars(select(AccountRoute)).all() == []
    assert link_for(gp, person).id == second.id
    [changed] = actions("stripe.default_changed")
    assert changed.details == {"account": second.account_id, "before": default.account_id}


def test_an_account_disconnected_in_stripe_leaves_the_other_as_default(app, gp, second, webhooks):
    default = live_link(gp)
    webhooks.disconnect(default.account_id)
    webhooks.wait_for_webhooks()
    process_received()
    assert [(link.id, link.is_default) for link in live_links_of(gp)] == [(second.id, True)]
    assert live_link(gp).id == second.id


def test_the_payments_page_filters_by_account_and_the_export_follows(app, gp, second):
    default = live_link(gp)
    person = find_user_by_email(CLINICIAN)
    call = call_in(gp, person)
    on_default = payment(call, sydney(2026, 3, 2, 10), description="On the default")
    on_default.stripe_account_id = default.account_id
    on_second = payment(call, sydney(2026, 3, 3, 10), description="On the second")
    on_second.stripe_account_id = second.account_id
    db.session.commit()
    browser = admin(app)
    every_day = {"from": "", "to": "", "clinic": str(gp.id)}
    page = browser.get("/payments/", query_string=every_day).get_data(as_text=True)
    assert '<select id="account" name="account">' in page
    assert "Harbourside Physio Room Pty Ltd" in page
    chosen = every_day | {"account": second.account_id}
    page = browser.get("/payments/", query_string=chosen).get_data(as_text=True)
    assert "On the second" in page and "On the default" not in page
    export_link = re.search(r'href="(/payments/export\.csv[^"]*)"', page).group(1)
    assert f"account={second.account_id}" in export_link
    exported = browser.get("/payments/export.csv", query_string=chosen).get_data(as_text=True)
    descriptions = [row["Description"] for row in csv.DictReader(io.StringIO(exported))]
    assert descriptions == ["On the second"]

    for bad in ("acct_nobody", "x" * 300, "' OR 1=1 --"):
        refused = browser.get("/payments/", query_string=every_day | {"account": bad})
        assert refused.status_code == 400
        assert "Choose an account from the list." in refused.get_data(as_text=True)
        assert browser.get("/payments/export.csv", query_string={"account": bad}).status_code == 400


def test_an_account_of_another_organisation_is_refused_by_the_filter(app, gp, stripe_control):
    other = factories.organisation("Bayside Care", "Bayside Clinic").clinics[0]
    foreign = link_clinic(stripe_control, other)
    db.session.commit()
    browser = admin(app)
    refused = browser.get("/payments/", query_string={"account": foreign.account_id})
    assert refused.status_code == 400


def test_a_clinician_cannot_manage_accounts(app, gp, second, clinician):
    person = find_user_by_email(CLINICIAN)
    token = csrf_token(clinician, "/calls/")
    base = PAGE.format(gp.id)
    for path, data in (
        (f"/stripe/{second.id}/rename", {"name": "Mine"}),
        (f"/stripe/{second.id}/default", {}),
        ("/routes", {"clinician": str(person.id), "link": str(second.id)}),
        (f"/stripe/{second.id}/remove", {}),
    ):
        response = clinician.post(base + path, data={"csrf_token": token, **data})
        assert response.status_code == 403, path
    assert [(link.name, link.is_default) for link in live_links_of(gp)][1] == (
        "Harbourside Physio Room Pty Ltd",
        False,
    )
    assert db.session.scalars(select(AccountRoute)).all() == []


def test_another_organisations_admin_gets_404_and_foreign_ids_are_404(
    app, gp, second, stripe_control
):
    other = factories.organisation("Bayside Care", "Bayside Clinic").clinics[0]
    other.gateway_enabled_at = gp.gateway_enabled_at
    foreign_link = link_clinic(stripe_control, other)
    outsider = factories.clinic_person("admin@bayside.example", other, ClinicRole.CLINIC_ADMIN)
    db.session.commit()
    browser = app.test_client()
    sign_in(browser, outsider.email, factories.PASSWORD)
    token = csrf_token(browser, PAGE.format(other.id))
    base = PAGE.format(gp.id)
    for path in (f"/stripe/{second.id}/rename", f"/stripe/{second.id}/default", "/routes"):
        response = browser.post(base + path, data={"csrf_token": token, "name": "X"})
        assert response.status_code == 404, path
    # Their own clinic's page with the GP clinic's link id: 404 too.
    own = PAGE.format(other.id)
    for path in (f"/stripe/{second.id}/rename", f"/stripe/{second.id}/remove"):
        response = browser.post(own + path, data={"csrf_token": token, "name": "X"})
        assert response.status_code == 404, path
    routed = browser.post(
        own + "/routes",
        data={"csrf_token": token, "clinician": "1", "link": str(second.id)},
    )
    assert routed.status_code == 303  # refused with a message: not one of their accounts
    assert db.session.scalars(select(AccountRoute)).all() == []
    assert foreign_link.is_live


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    with services.empty_database(request.param, tmp_path) as url:
        yield url


def test_the_migration_makes_each_live_link_its_clinics_named_default(empty_database):
    """Down to one live link per clinic (a clinic's other accounts are removed, its default
    kept) and up again: each live link is its clinic's default, named as Stripe names it."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database, "CELERY_BROKER_URL": "memory://"})
    with app.app_context():
        upgrade()
        one, two = factories.organisation("Migrating Care", "One", "Two").clinics
        now = utcnow()

        def link(clinic, account, default, state=LinkState.LINKED):
            db.session.add(
                StripeLink(clinic=clinic, account_id=account, linked_at=now, refreshed_at=now,
                           display_name=f"{account} Pty Ltd", name="Renamed",
                           is_default=default, state=state.value)
            )  # fmt: skip

        link(one, "acct_gone", False, LinkState.REMOVED)
        link(one, "acct_one", True)
        link(two, "acct_two_default", True)
        link(two, "acct_two_other", False)
        db.session.commit()
        downgrade(revision="5e1f0b7c3a92")
        upgrade()
        links = sa.table(
            "stripe_links", sa.column("id"), sa.column("account_id"), sa.column("state"),
            sa.column("name"), sa.column("is_default"),
        )  # fmt: skip
        rows = db.session.execute(
            sa.select(links.c.account_id, links.c.state, links.c.name, links.c.is_default).order_by(
                links.c.id
            )
        ).all()
        assert [tuple(row) for row in rows] == [
            ("acct_gone", "removed", "acct_gone Pty Ltd", False),
            ("acct_one", "linked", "acct_one Pty Ltd", True),
            ("acct_two_default", "linked", "acct_two_default Pty Ltd", True),
            ("acct_two_other", "removed", "acct_two_other Pty Ltd", False),
        ]
        db.session.remove()
        db.engine.dispose()


def test_two_admins_choosing_different_defaults_at_once_leave_one_default(
    app, gp, second, stripe_control
):
    third = link_clinic(stripe_control, gp, display_name="Harbourside Third Pty Ltd")
    db.session.commit()
    first, other = admin(app), admin(app)
    tokens = [csrf_token(browser, PAGE.format(gp.id)) for browser in (first, other)]

    def choose(browser, token, link_id):
        path = PAGE.format(gp.id) + f"/stripe/{link_id}/default"
        return browser.post(path, data={"csrf_token": token}).status_code

    for _round in range(4):
        make_first = live_link(gp)
        db.session.commit()
        rivals = [link.id for link in (second, third)]
        answers = at_once(
            app,
            partial(choose, first, tokens[0], rivals[0]),
            partial(choose, other, tokens[1], rivals[1]),
        )
        assert answers == [303, 303]
        defaults = [link.id for link in live_links_of(gp) if link.is_default]
        assert len(defaults) == 1 and defaults[0] in rivals
        # Back to the first account for the next round.
        assert choose(first, tokens[0], make_first.id) == 303
        assert live_link(gp).id == make_first.id


def test_an_account_event_changes_only_its_own_account_and_request_payment_follows_the_route(
    app, gp, second, clinician, webhooks
):
    """Stripe turns card payments off on the routed account only: Request Payment is
    unavailable in the routed clinician's calls, and still there for the others."""
    person = find_user_by_email(CLINICIAN)
    post(admin(app), gp, "/routes", clinician=str(person.id), link=str(second.id))
    webhooks.update_account(second.account_id, charges_enabled=False)
    webhooks.wait_for_webhooks()
    process_received()
    default, routed = live_links_of(gp)
    assert (default.charges_enabled, routed.charges_enabled) == (True, False)

    call = start_call(clinician, gp)
    screen = clinician.get(f"/calls/{call.id}").get_data(as_text=True)
    assert "Stripe has not enabled card payments" in screen
    join(app, call)
    form = {"csrf_token": csrf_token(clinician, f"/calls/{call.id}"), "request_key": "k" * 20}
    refused = ask(clinician, call, form=form)  # a form kept from before: refused all the same
    assert "Stripe has not enabled card payments" in flashed(clinician, refused)
    assert requests_made() == []

    factories.clinic_person("locum@harbourside.example", gp, ClinicRole.CLINICIAN)
    db.session.commit()
    locum = app.test_client()
    sign_in(locum, "locum@harbourside.example", factories.PASSWORD)
    locum_call = start_call(locum, gp, title="Sam Citizen, 11:00")
    screen = locum.get(f"/calls/{locum_call.id}").get_data(as_text=True)
    assert "Stripe has not enabled card payments" not in screen
    join(app, locum_call, name="Sam Citizen")
    ask(locum, locum_call)
    [request] = requests_made()
    assert request.stripe_account_id == default.account_id
