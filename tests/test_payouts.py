"""Payouts: read from the Stripe stand-in through the real stripe library, kept in vcpay, and
shown so that a clinic can match a bank deposit to its patients, to the cent.

Each story pays requests in calls, refunds part of one as the clinic's Stripe dashboard
would (the stripe library on the connected account), lets the stand-in settle the balance and
pay it out, and compares what vcpay shows with what Stripe lists.
"""

import csv
import io
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tests import factories
from tests.conftest import csrf_token, sign_in
from tests.payment_steps import (  # noqa: F401 - the fixtures
    ask,
    clinician_fixture,
    gp_fixture,
    join,
    pay_and_process,
    requests_made,
    start_call,
    stripe_platform,
)
from tests.stripe_events import event, post_event
from tests.stripe_standin import link_clinic, process_received, received
from vcpay.client_payments.stripe_link import live_link
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.payments.models import PaymentRequest
from vcpay.payouts.models import Payout, PayoutTransaction
from vcpay.payouts.tasks import refresh_account_payouts
from vcpay.people.models import ClinicRole
from vcpay.people.services import find_user_by_email
from vcpay.webhooks.models import EventState

CLINIC_ADMIN = "clinicadmin@harbourside.example"


@pytest.fixture
def admin(app, gp):
    browser = app.test_client()
    sign_in(browser, CLINIC_ADMIN)
    return browser


def paid(clinician, gp, control, amount: str, description="Consultation") -> PaymentRequest:
    """A request in a new call Pat Citizen joined, paid at the stand-in, its events applied."""
    call = start_call(clinician, gp)
    join(clinician.application, call)
    ask(clinician, call, amount, description)
    request = requests_made()[-1]
    pay_and_process(control, request)
    control.wait_for_webhooks()
    process_received()
    return db.session.get(PaymentRequest, request.id)


def account_of(gp) -> str:
    return live_link(gp).account_id


def paid_out(control, account: str, **how) -> dict:
    """What is owed settles, and the stand-in pays it out (paid at once by default)."""
    control.settle_balance(account)
    [payout] = control.pay_out(account, **how)
    return payout


def refresh_as(browser, clinic) -> None:
    token = csrf_token(browser, f"/payouts/?clinic={clinic.id}")
    response = browser.post(f"/payouts/clinics/{clinic.id}/refresh", data={"csrf_token": token})
    assert response.status_code == 303, response.get_data(as_text=True)


def kept(payout_id: str) -> Payout:
    db.session.rollback()
    payout = db.session.scalar(select(Payout).filter_by(payout_id=payout_id))
    assert payout is not None, f"{payout_id} was not kept"
    return payout


def stripe_lists(app, control, account: str, payout_id: str) -> list:
    platform = stripe_platform(app, control)
    page = platform.v1.balance_transactions.list(
        {"payout": payout_id, "limit": 100}, {"stripe_account": account}
    )
    return list(page.auto_paging_iter())


def test_a_paid_request_keeps_its_charge_and_stripes_fee(clinician, gp, webhooks):
    request = paid(clinician, gp, webhooks, "85.00")
    assert request.charge_id and request.charge_id.startswith("ch_")
    # 1.7% of A$85.00 is 144.5 cents, rounded half up to 145, plus 30.
    assert request.stripe_fee == 175


def test_payout_contents_match_stripes_balance_transactions_to_the_cent(
    app, clinician, admin, gp, webhooks
):
    first = paid(clinician, gp, webhooks, "85.00")
    second = paid(clinician, gp, webhooks, "120.00", "Follow-up")
    third = paid(clinician, gp, webhooks, "42.55", "Script")
    account = account_of(gp)
    stripe_platform(app, webhooks).v1.refunds.create(
        {"charge": second.charge_id, "amount": 2000}, {"stripe_account": account}
    )
    payout = paid_out(webhooks, account)

    refresh_as(admin, gp)

    row = kept(payout["id"])
    assert (row.amount, row.status, row.stripe_account_id) == (payout["amount"], "paid", account)
    listed = stripe_lists(app, webhooks, account, payout["id"])
    stored = {t.balance_transaction_id: t for t in row.transactions}
    assert set(stored) == {t.id for t in listed}
    for transaction in listed:
        mine = stored[transaction.id]
        assert (mine.type, mine.amount, mine.fee, mine.net) == (
            transaction.type, transaction.amount, transaction.fee, transaction.net,
        )  # fmt: skip
    contents = [t for t in row.transactions if t.type != "payout"]
    assert sum(t.net for t in contents) == payout["amount"]
    by_type = {(t.type, t.payment_request_id) for t in contents}
    assert by_type == {
        ("charge", first.id), ("charge", second.id), ("charge", third.id),
        ("refund", second.id),
    }  # fmt: skip
    expected_net = 8500 + 12000 + 4255 - 2000 - (175 + 234 + 102)
    assert payout["amount"] == expected_net

    page = admin.get(f"/payouts/{row.id}").get_data(as_text=True)
    assert "Adds up" in page
    for text in ("Pat Citizen", "Follow-up", "Script", first.receipt_number):
        assert text in page
    listing = admin.get(f"/payouts/?clinic={gp.id}").get_data(as_text=True)
    assert f"/payouts/{row.id}" in listing


def test_the_payout_paid_webhook_refreshes_the_payout(clinician, gp, webhooks):
    request = paid(clinician, gp, webhooks, "85.00")
    payout = paid_out(webhooks, account_of(gp), arrive="later")
    webhooks.wait_for_webhooks()
    process_received()
    on_its_way = kept(payout["id"])
    assert on_its_way.status == "in_transit"
    assert on_its_way.contents_read_at is not None
    assert request.id in {t.payment_request_id for t in on_its_way.transactions}

    webhooks.payout_paid(payout["id"])
    webhooks.wait_for_webhooks()
    process_received()

    assert kept(payout["id"]).status == "paid"
    assert {e.state for e in received("payout.paid")} == {EventState.PROCESSED}


def test_the_hourly_refresh_catches_a_payout_whose_webhooks_were_missed(
    app, clinician, gp, webhooks
):
    request = paid(clinician, gp, webhooks, "85.00")
    payout = paid_out(webhooks, account_of(gp))
    webhooks.wait_for_webhooks()  # stored, never processed: as if the workers had missed them
    assert refresh_account_payouts(account_of(gp)) == 1

    caught = kept(payout["id"])
    assert caught.status == "paid"
    assert request.id in {t.payment_request_id for t in caught.transactions}


def test_a_failed_payout_is_marked_failed_and_the_opted_in_admins_are_told(clinician, gp, webhooks):
    find_user_by_email(CLINIC_ADMIN).payment_notices = True
    db.session.commit()
    paid(clinician, gp, webhooks, "85.00")
    payout = paid_out(webhooks, account_of(gp), fail="account_closed")
    webhooks.wait_for_webhooks()
    process_received()

    failed = kept(payout["id"])
    assert failed.status == "failed"
    assert "closed" in failed.failure_message
    emails = db.session.scalars(select(OutboundEmail).filter_by(recipient=CLINIC_ADMIN)).all()
    notices = [e for e in emails if "payout failed" in e.subject]
    assert len(notices) == 1, (
        [e.subject for e in emails],
        [(e.type, e.state, e.last_error) for e in received()],
    )
    assert f"/payouts/{failed.id}" in notices[0].body_text
    # Another admin who did not opt in hears nothing.
    assert not db.session.scalars(
        select(OutboundEmail).where(OutboundEmail.subject.contains("payout failed"))
        .where(OutboundEmail.recipient != CLINIC_ADMIN)
    ).all()  # fmt: skip


def test_a_payout_event_from_an_account_vcpay_has_no_link_for_does_nothing(
    app, client, clinician, gp, webhooks
):
    paid(clinician, gp, webhooks, "85.00")
    theirs = paid_out(webhooks, account_of(gp), arrive="later")
    webhooks.wait_for_webhooks()
    process_received()
    db.session.execute(PayoutTransaction.__table__.delete())
    db.session.execute(Payout.__table__.delete())
    db.session.commit()

    # An account nobody linked, and another organisation's linked account, both naming
    # the GP clinic's payout: Stripe is asked on the sender's account only.
    unlinked = webhooks.connected_account(app.config["STRIPE_CLIENT_ID"], business_name="Odd")
    other = factories.organisation("Bayside Care", "Bayside Clinic").clinics[0]
    other.gateway_enabled_at = utcnow()
    linked_elsewhere = link_clinic(webhooks, other).account_id
    db.session.commit()
    for account in (unlinked, linked_elsewhere):
        body = event("payout.paid", {"id": theirs["id"], "object": "payout"}, account=account)
        assert post_event(client, body).status_code == 200
    process_received()

    assert db.session.scalars(select(Payout)).all() == []
    states = {e.account: e.state for e in received("payout.paid") if e.account != account_of(gp)}
    assert states == {unlinked: EventState.IGNORED, linked_elsewhere: EventState.IGNORED}


@pytest.fixture
def a_payout(clinician, gp, webhooks) -> Payout:
    paid(clinician, gp, webhooks, "85.00", '=HYPERLINK("http://x")')
    paid(clinician, gp, webhooks, "63.10", 'Преглед, "контрола"; снимак')
    payout = paid_out(webhooks, account_of(gp))
    webhooks.wait_for_webhooks()
    process_received()
    return kept(payout["id"])


def test_clinicians_are_refused_and_other_organisations_see_nothing(app, clinician, gp, a_payout):
    assert clinician.get(f"/payouts/{a_payout.id}").status_code == 403
    assert clinician.get(f"/payouts/{a_payout.id}/export.csv").status_code == 403
    assert clinician.get("/payouts/").status_code == 403

    other = factories.organisation("Bayside Care", "Bayside Clinic")
    factories.clinic_person("admin@bayside.example", other.clinics[0], ClinicRole.CLINIC_ADMIN)
    db.session.commit()
    stranger = app.test_client()
    sign_in(stranger, "admin@bayside.example", factories.PASSWORD)
    assert stranger.get(f"/payouts/{a_payout.id}").status_code == 404
    assert stranger.get(f"/payouts/{a_payout.id}/export.csv").status_code == 404
    assert stranger.get(f"/payouts/?clinic={gp.id}").status_code == 404
    assert stranger.get("/payouts/?clinic=abc").status_code == 404


def test_a_payout_is_shown_in_the_client_payments_section(admin, a_payout):
    page = admin.get(f"/payouts/{a_payout.id}").get_data(as_text=True)
    [current] = re.findall(r'<a href="([^"]+)"\s*aria-current="page"', page)
    assert current == "/client-payments/"


def test_the_csv_reads_back_and_adds_up_to_the_payout(admin, a_payout):
    response = admin.get(f"/payouts/{a_payout.id}/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))

    assert len(rows) == 2
    cents = sum(round(float(r["Net"]) * 100) for r in rows)
    assert cents == a_payout.amount
    assert all(re.fullmatch(r"-?\d+\.\d\d", r[c]) for r in rows for c in ("Gross", "Fee", "Net"))
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", r["Date"]) for r in rows
    )
    sydney = ZoneInfo("Australia/Sydney")  # the clinic's clocks, whatever the machine's
    assert all(
        (written := datetime.fromisoformat(r["Date"])).utcoffset() == sydney.utcoffset(written)
        for r in rows
    )
    descriptions = {r["Description"] for r in rows}
    assert descriptions == {'\'=HYPERLINK("http://x")', 'Преглед, "контрола"; снимак'}
    assert {r["Patient"] for r in rows} == {"Pat Citizen"}
    assert {r["Payout"] for r in rows} == {a_payout.payout_id}


def test_refreshing_twice_keeps_one_row_per_payout_and_transaction(admin, gp, a_payout):
    before = len(a_payout.transactions)
    refresh_as(admin, gp)
    refresh_as(admin, gp)
    db.session.rollback()
    assert db.session.scalars(select(Payout)).all() == [a_payout]
    assert len(db.session.get(Payout, a_payout.id).transactions) == before


def stored_payouts(account: str, count: int, newest) -> None:
    """``count`` paid payouts a day apart, the newest at ``newest``, as vcpay keeps them."""
    for n in range(count):
        day = newest - timedelta(days=n)
        db.session.add(
            Payout(
                stripe_account_id=account, payout_id=f"po_page{n:04d}", amount=100_00 + n,
                currency="aud", status="paid", arrival_date=day + timedelta(days=2),
                created=day, failure_message="", updated_at=day,
            )
        )  # fmt: skip
    db.session.commit()


def listed(page: str) -> list[str]:
    return re.findall(r'<a href="/payouts/(\d+)">', page)


def older_link(page: str) -> str | None:
    found = re.search(r'href="([^"]+)" rel="next">Older payouts', page)
    return found.group(1).replace("&amp;", "&") if found else None


def test_years_of_payouts_are_paged_newest_first_without_repeats_or_gaps(admin, gp):
    now = utcnow()
    stored_payouts(account_of(gp), 230, now - timedelta(hours=1))
    first = admin.get(f"/payouts/?clinic={gp.id}").get_data(as_text=True)
    # A payout arriving while the admin reads shifts nothing on the pages after the first.
    stored = db.session.scalars(select(Payout).where(Payout.payout_id.like("po_page%")))
    newest_first = [str(p.id) for p in sorted(stored, key=lambda p: p.created, reverse=True)]
    db.session.add(
        Payout(
            stripe_account_id=account_of(gp), payout_id="po_arrived", amount=1, currency="aud",
            status="pending", arrival_date=now, created=now, failure_message="", updated_at=now,
        )
    )  # fmt: skip
    db.session.commit()

    second = admin.get(older_link(first)).get_data(as_text=True)
    third = admin.get(older_link(second)).get_data(as_text=True)

    assert listed(first) + listed(second) + listed(third) == newest_first
    assert [len(listed(page)) for page in (first, second, third)] == [100, 100, 30]
    assert older_link(third) is None and "Newest payouts" in third
    assert f"clinic={gp.id}" in older_link(first)


def test_an_edited_payouts_page_link_is_refused_with_a_message(admin, gp):
    stored_payouts(account_of(gp), 101, utcnow())
    link = older_link(admin.get("/payouts/").get_data(as_text=True))

    refused = admin.get(link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB"))

    assert refused.status_code == 400
    assert "start from the newest payouts" in refused.get_data(as_text=True)
    assert admin.get("/payouts/?after=%00").status_code == 400
