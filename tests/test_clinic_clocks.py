"""Dates and times as people read them: on the clinic's clocks, the zone named, English written
day first (as in Australia), Serbian as Serbian; on the receipt page and in the receipt email,
on the staff pages, and in the CSV, all from the one place (``vcpay.clinic_clocks``)."""

import csv
import io
import re
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from flask import current_app
from flask_babel import force_locale
from sqlalchemy import select, update

from tests.conftest import csrf_token, sign_in
from tests.payment_steps import (
    ask,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    paid_with_the_page_asking_stripe,
    pay_now,
    receipt_path,
    start_call,
    the_request,
)
from tests.stripe_standin import process_received
from vcpay.calls.models import Call
from vcpay.client_payments.models import StripeLink
from vcpay.client_payments.stripe_link import live_link
from vcpay.clinic_clocks import clinic_clock, clinic_day, clinic_moment, reader_day
from vcpay.enablement.models import EnablementRequest, RequestEvent
from vcpay.enablement.raising import description_of
from vcpay.extensions import db
from vcpay.mail.models import OutboundEmail
from vcpay.mail.services import compose_email
from vcpay.payments.models import PaymentRequest
from vcpay.payouts.models import Payout
from vcpay.people.models import Clinic
from vcpay.people.services import find_user_by_email

SYDNEY, PERTH = "Australia/Sydney", "Australia/Perth"
CLINIC_ADMIN = "clinicadmin@harbourside.example"
MANAGER = "manager@harbourside.example"
NNBSP = "\u202f"  # CLDR's narrow no-break space between a time and am/pm

# 3:42:31 pm in Sydney on a summer afternoon (daylight time), and on a winter one.
SUMMER = datetime(2026, 12, 1, 4, 42, 31, tzinfo=UTC)
WINTER = datetime(2026, 7, 1, 4, 42, 31, tzinfo=UTC)


def clinic_in(zone: str) -> SimpleNamespace:
    return SimpleNamespace(time_zone=zone)


def written(locale: str, *what):
    with force_locale(locale):
        return what[0](*what[1:])


# -- The formatting ---------------------------------------------------------------------------


def test_english_is_written_day_first_with_the_zones_abbreviation(app):
    sydney = clinic_in(SYDNEY)
    assert written("en", clinic_moment, SUMMER, sydney) == f"1 Dec 2026, 3:42{NNBSP}pm AEDT"
    assert written("en", clinic_moment, SUMMER, sydney, "short") == f"1/12/26, 3:42{NNBSP}pm AEDT"
    assert written("en", clinic_clock, SUMMER, sydney) == f"3:42{NNBSP}pm AEDT"
    assert written("en", clinic_day, SUMMER, sydney) == "1 Dec 2026"
    assert written("en", reader_day, date(2026, 3, 1)) == "1 Mar 2026"
    # A day on the 12th of January reads as such, never as the 1st of December.
    january = datetime(2026, 1, 12, 1, 0, tzinfo=UTC)
    assert written("en", clinic_moment, january, sydney, "short").startswith("12/1/26, 12:00")


def test_serbian_is_written_as_serbian_with_the_offset_where_it_has_no_abbreviation(app):
    sydney = clinic_in(SYDNEY)
    for locale in ("sr_Cyrl", "sr_Latn"):
        assert written(locale, clinic_moment, SUMMER, sydney) == "1. 12. 2026. 15:42 GMT+11:00"
        assert written(locale, clinic_clock, WINTER, sydney) == "14:42 GMT+10:00"
    # Where Serbian has its own abbreviation, it is used.
    belgrade = clinic_in("Europe/Belgrade")
    assert written("sr_Cyrl", clinic_clock, SUMMER, belgrade) == "05:42 CET"
    assert written("sr_Cyrl", clinic_clock, WINTER, belgrade) == "06:42 CEST"


def test_a_perth_clinic_says_awst_and_sydney_follows_daylight_saving(app):
    assert written("en", clinic_moment, SUMMER, clinic_in(PERTH)) == (
        f"1 Dec 2026, 12:42{NNBSP}pm AWST"
    )
    assert written("en", clinic_moment, WINTER, clinic_in(SYDNEY)) == (
        f"1 Jul 2026, 2:42{NNBSP}pm AEST"
    )
    # Daylight saving ended at 3 am on 5 April 2026: a minute apart, an hour back.
    last_daylight = datetime(2026, 4, 4, 15, 59, tzinfo=UTC)
    first_standard = datetime(2026, 4, 4, 16, 0, tzinfo=UTC)
    assert written("en", clinic_clock, last_daylight, clinic_in(SYDNEY)) == f"2:59{NNBSP}am AEDT"
    assert written("en", clinic_clock, first_standard, clinic_in(SYDNEY)) == f"2:00{NNBSP}am AEST"


def test_the_day_is_the_clinics_day(app):
    half_past_midnight_in_sydney = datetime(2026, 12, 1, 13, 30, tzinfo=UTC)
    assert written("en", clinic_day, half_past_midnight_in_sydney, clinic_in(SYDNEY)) == (
        "2 Dec 2026"
    )
    assert written("en", clinic_day, half_past_midnight_in_sydney, clinic_in(PERTH)) == (
        "1 Dec 2026"
    )


def test_an_organisation_reads_its_first_clinics_clocks_and_nothing_reads_the_default(app):
    organisation = SimpleNamespace(clinics=[clinic_in(PERTH), clinic_in(SYDNEY)])
    assert written("en", clinic_clock, SUMMER, organisation) == f"12:42{NNBSP}pm AWST"
    assert written("en", clinic_clock, SUMMER, None) == f"3:42{NNBSP}pm AEDT"
    app.config["BABEL_DEFAULT_TIMEZONE"] = PERTH
    assert written("en", clinic_clock, SUMMER, SimpleNamespace(clinics=[])) == (
        f"12:42{NNBSP}pm AWST"
    )
    assert written("en", clinic_moment, None, clinic_in(SYDNEY)) == ""
    # A zone this machine does not know is read as UTC, and says so.
    assert written("en", clinic_clock, SUMMER, clinic_in("Mars/Olympus_Mons")) == (
        f"4:42{NNBSP}am UTC"
    )


def test_no_template_formats_a_time_of_its_own():
    """Flask-Babel's filters write English the American way and ignore the clinic: every
    template goes through clinic_moment, clinic_clock, clinic_day or the clinic_time filter."""
    templates = Path(__file__).parents[1] / "vcpay" / "templates"
    own = re.compile(r"\|\s*(datetimeformat|dateformat|timeformat)\b|\.strftime\(")
    offenders = [
        f"{path.relative_to(templates)}: {match.group(0)}"
        for path in sorted(templates.rglob("*.*"))
        for match in own.finditer(path.read_text())
    ]
    assert offenders == []


# -- The receipt, on the page and in the email ------------------------------------------------


def sydney_time_in_english(moment: datetime) -> str:
    """The oracle, by the standard library: "1 Dec 2026, 3:42 pm AEDT"."""
    local = moment.astimezone(ZoneInfo(SYDNEY))
    hour = local.hour % 12 or 12
    half = "am" if local.hour < 12 else "pm"
    named = "AEDT" if local.dst() else "AEST"
    return f"{local.day} {local:%b %Y}, {hour}:{local:%M}{NNBSP}{half} {named}"


def resend_receipt() -> OutboundEmail:
    """The clinic admin sends the receipt again from the payment's page."""
    admin = sign_in_as(CLINIC_ADMIN)
    request = the_request()
    path = f"/payments/{request.id}"
    form = {"csrf_token": csrf_token(admin, path), "email": request.patient_email}
    page = admin.get(path).get_data(as_text=True)
    form["resend_key"] = page.split('name="resend_key" type="hidden" value="')[1].split('"')[0]
    assert admin.post(f"{path}/receipt", data=form).status_code == 303
    db.session.rollback()
    query = select(OutboundEmail).where(OutboundEmail.dedupe_key.like("%:resend:%"))
    return db.session.scalars(query.order_by(OutboundEmail.id.desc())).first()


def sign_in_as(email: str):
    browser = current_app.test_client()
    sign_in(browser, email)
    return browser


def paid_at(moment: datetime) -> None:
    db.session.execute(update(PaymentRequest).values(paid_at=moment))
    db.session.commit()


def test_the_receipt_page_and_email_show_sydney_time_with_its_zone(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call, "85.00", "Consultation")
    request = the_request()
    _done, page = paid_with_the_page_asking_stripe(patient, call, request, stripe_control)
    request = the_request()
    when = sydney_time_in_english(request.paid_at)
    assert f"<dd>{when}</dd>" in page.get_data(as_text=True)
    [email] = db.session.scalars(select(OutboundEmail)).all()
    assert f"\nDate: {when}\n" in email.body_text

    paid_at(SUMMER)
    receipt = app.test_client().get(receipt_path(email)).get_data(as_text=True)
    assert f"<dd>1 Dec 2026, 3:42{NNBSP}pm AEDT</dd>" in receipt
    assert " PM" not in receipt and "Dec 1," not in receipt
    assert f"\nDate: 1 Dec 2026, 3:42{NNBSP}pm AEDT\n" in resend_receipt().body_text

    paid_at(WINTER)
    receipt = app.test_client().get(receipt_path(email)).get_data(as_text=True)
    assert f"<dd>1 Jul 2026, 2:42{NNBSP}pm AEST</dd>" in receipt
    gp.time_zone = PERTH
    db.session.commit()
    receipt = app.test_client().get(receipt_path(email)).get_data(as_text=True)
    assert f"<dd>1 Jul 2026, 12:42{NNBSP}pm AWST</dd>" in receipt
    assert f"\nDate: 1 Jul 2026, 12:42{NNBSP}pm AWST\n" in resend_receipt().body_text


def test_a_patient_paying_in_serbian_reads_sydney_time_in_serbian(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call, "85.00", "Consultation")
    request = the_request()
    assert pay_now(patient, call, request, **{"Accept-Language": "sr"}).status_code == 303
    webhooks.pay(request.checkout_session_id, "4242424242424242")
    webhooks.wait_for_webhooks()
    process_received()
    [email] = db.session.scalars(select(OutboundEmail)).all()
    local = the_request().paid_at.astimezone(ZoneInfo(SYDNEY))
    offset = "+11:00" if local.dst() else "+10:00"
    when = f"{local.day}. {local.month}. {local.year}. {local:%H:%M} GMT{offset}"
    assert f"\nДатум: {when}\n" in email.body_text  # noqa: RUF001

    paid_at(SUMMER)
    path = receipt_path(email)
    receipt = app.test_client().get(path, headers={"Accept-Language": "sr"})
    assert "<dd>1. 12. 2026. 15:42 GMT+11:00</dd>" in receipt.get_data(as_text=True)
    assert "\nДатум: 1. 12. 2026. 15:42 GMT+11:00\n" in resend_receipt().body_text  # noqa: RUF001


def test_the_patient_is_asked_to_pay_by_a_time_on_the_clinics_clock(app, clinician, gp):
    call = start_call(clinician, gp)
    patient = join(app, call, "Pat Citizen")
    ask(clinician, call, "85.00", "Consultation")
    expires = the_request().expires_at
    panel = patient.get(f"/join/{call.guest_token}/panel").get_data(as_text=True)
    clock = sydney_time_in_english(expires).split(", ", 1)[1]
    assert f"Please pay by {clock}." in panel


# -- Staff pages, and the CSV -----------------------------------------------------------------


def test_staff_pages_show_the_clinics_time_and_zone(app, clinician, gp):
    call = start_call(clinician, gp)
    db.session.execute(update(Call).filter_by(id=call.id).values(created_at=SUMMER))
    db.session.execute(
        update(Clinic).filter_by(id=gp.id).values(gateway_enabled_at=WINTER, time_zone=PERTH)
    )
    db.session.execute(
        update(StripeLink).filter_by(clinic_id=gp.id).values(linked_at=WINTER, refreshed_at=SUMMER)
    )
    db.session.commit()

    calls = clinician.get("/calls/").get_data(as_text=True)
    assert f"<td>1/12/26, 12:42{NNBSP}pm AWST</td>" in calls
    page = sign_in_as(CLINIC_ADMIN).get(f"/client-payments/clinics/{gp.id}").get_data(as_text=True)
    assert f"On since 1/7/26, 12:42{NNBSP}pm AWST" in page
    assert f"1/7/26, 12:42{NNBSP}pm AWST by " in page
    assert f"<dd>1/12/26, 12:42{NNBSP}pm AWST</dd>" in page  # details as of


def test_an_enablement_request_reads_its_organisations_clocks(app, gp):
    manager = sign_in_as(MANAGER)
    gp.time_zone = PERTH  # the organisation's first clinic by name
    request = EnablementRequest(
        organisation_id=gp.organisation_id, requester_id=find_user_by_email(MANAGER).id
    )
    db.session.add(request)
    db.session.flush()
    db.session.add(RequestEvent(request_id=request.id, kind="created", occurred_at=WINTER))
    db.session.execute(update(EnablementRequest).values(created_at=SUMMER))
    db.session.commit()

    listed = manager.get(f"/enablement/organisations/{gp.organisation_id}/requests")
    assert f"1/12/26, 12:42{NNBSP}pm AWST" in listed.get_data(as_text=True)
    shown = manager.get(f"/enablement/requests/{request.id}").get_data(as_text=True)
    assert f">1/7/26, 12:42{NNBSP}pm AWST</time>" in shown
    # The service desk reads it in ISO 8601 with the offset, which says which.
    request.terms_accepted_at = WINTER
    assert "Terms and fees accepted: 2026-07-01T12:42:31+08:00\n" in description_of(request)


def test_a_payout_its_page_and_its_failure_email_read_the_clinics_clocks(app, gp):
    payout = Payout(
        stripe_account_id=live_link(gp).account_id, payout_id="po_clocks", amount=100_00,
        currency="aud", status="failed", arrival_date=datetime(2026, 12, 2, 14, tzinfo=UTC),
        created=SUMMER, failure_message="No such account", updated_at=SUMMER,
    )  # fmt: skip
    db.session.add(payout)
    db.session.commit()
    page = sign_in_as(CLINIC_ADMIN).get(f"/payouts/{payout.id}").get_data(as_text=True)
    assert f"<dd>1 Dec 2026, 3:42{NNBSP}pm AEDT</dd>" in page
    assert "<dd>3 Dec 2026</dd>" in page  # 2 pm UTC on the 2nd is the 3rd in Sydney
    email = compose_email(
        "clocks", CLINIC_ADMIN, "Payout failed", "payout_failed", locale="en",
        payout=payout, clinic=gp, link="", page="http://vcpay.example/payouts/1",
        settings_link="http://vcpay.example/settings",
    )  # fmt: skip
    assert "\nDue to arrive: 3 Dec 2026\n" in email.body_text


@pytest.mark.parametrize("zone, offset", [(SYDNEY, "+11:00"), (PERTH, "+08:00")])
def test_the_payments_csv_is_written_on_the_clinics_clocks(
    app, clinician, gp, webhooks, zone, offset
):
    call = start_call(clinician, gp)
    join(app, call, "Pat Citizen")
    ask(clinician, call, "85.00", "Consultation")
    webhooks.pay(the_request().checkout_session_id, "4242424242424242")
    webhooks.wait_for_webhooks()
    process_received()
    db.session.execute(update(PaymentRequest).values(created_at=SUMMER, paid_at=SUMMER))
    db.session.execute(update(Clinic).filter_by(id=gp.id).values(time_zone=zone))
    db.session.commit()
    raw = (
        sign_in_as(CLINIC_ADMIN)
        .get("/payments/export.csv?from=2026-11-01&to=2026-12-31")
        .get_data()
    )
    [row] = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    local = SUMMER.astimezone(ZoneInfo(zone)).replace(tzinfo=None).isoformat()
    assert row["Date and time"] == f"{local}{offset}"
