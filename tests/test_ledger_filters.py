"""The Payments page: whose rows each person sees, the filters (days in the clinic's time
zone), the search, the totals over the whole filter and the chart of daily takings."""

import re
from datetime import datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from tests import factories
from tests.conftest import sign_in
from tests.ledger_rows import call_in, payment, sydney
from vcpay.extensions import db
from vcpay.payments.models import PaymentState
from vcpay.people.demo import seed_demo
from vcpay.people.models import Clinic, ClinicRole
from vcpay.people.services import find_user_by_email

CLINIC_ADMIN = "clinicadmin@harbourside.example"
ORG_ADMIN = "orgadmin@harbourside.example"
CLINICIAN = "clinician@harbourside.example"
EVERY_DAY = {"from": "", "to": ""}  # dates left empty: no limit (the rows here are in March)


class Places:
    """Harbourside's GP clinic (Sydney) and physiotherapy (Perth), and Riverside's clinic."""

    def __init__(self):
        organisation = seed_demo(enable_gateway=True)
        self.gp, self.physio = sorted(organisation.clinics, key=lambda c: c.name)
        self.physio.time_zone = "Australia/Perth"
        self.clinician = find_user_by_email(CLINICIAN)
        self.other_clinician = factories.clinic_person(
            "locum@harbourside.example", self.gp, ClinicRole.CLINICIAN
        )
        physio_clinician = factories.clinic_person(
            "physio@harbourside.example", self.physio, ClinicRole.CLINICIAN
        )
        riverside = factories.organisation("Riverside Care", "Riverside GP")
        self.foreign = riverside.clinics[0]
        self.foreign_admin = factories.clinic_person(
            "admin@riverside.example", self.foreign, ClinicRole.CLINIC_ADMIN
        )
        self.gp_call = call_in(self.gp, self.clinician)
        self.locum_call = call_in(self.gp, self.other_clinician)
        self.physio_call = call_in(self.physio, physio_clinician)
        self.foreign_call = call_in(self.foreign, None)


@pytest.fixture
def places(app) -> Places:
    built = Places()
    db.session.commit()
    return built


def signed_in(app, email, password="vcpay-demo-2026"):
    browser = app.test_client()
    assert sign_in(browser, email, password).status_code == 302
    return browser


def shown_descriptions(page: str) -> list[str]:
    body = page.split('id="list-heading"', 1)[1]
    return re.findall(r"<td>([^<]*(?:visit|consult|massage)[^<]*)</td>", body, re.I)


def test_a_payment_at_half_past_eleven_at_night_is_on_that_sydney_day(app, places):
    # 23:30 in Sydney on 1 March is 12:30 UTC the same day in summer (UTC+11): to UTC it is
    # 1 March too; 00:30 on 2 March is 13:30 UTC on 1 March, which UTC would count wrongly.
    payment(places.gp_call, sydney(2026, 3, 1, 23, 30), description="Night visit", amount=40_00)
    payment(places.gp_call, sydney(2026, 3, 2, 0, 30), description="Early visit", amount=60_00)
    db.session.commit()
    admin = signed_in(app, CLINIC_ADMIN)

    first = admin.get("/payments/?from=2026-03-01&to=2026-03-01").get_data(as_text=True)
    second = admin.get("/payments/?from=2026-03-02&to=2026-03-02").get_data(as_text=True)

    assert shown_descriptions(first) == ["Night visit"]
    assert shown_descriptions(second) == ["Early visit"]
    assert "A$40.00" in first.split('id="totals-heading"')[1].split("</section>")[0]


def test_two_clinics_in_different_zones_each_count_their_own_day(app, places):
    # 06:30 on 2 March in Sydney is 03:30 in Perth, still 2 March there; 01:30 on 2 March in
    # Sydney is 22:30 on 1 March in Perth.
    payment(places.physio_call, sydney(2026, 3, 2, 1, 30), description="Massage late")
    payment(places.gp_call, sydney(2026, 3, 2, 1, 30), description="Consult early")
    db.session.commit()
    admin = signed_in(app, ORG_ADMIN)

    page = admin.get("/payments/?from=2026-03-02&to=2026-03-02").get_data(as_text=True)

    assert shown_descriptions(page) == ["Consult early"]
    page = admin.get("/payments/?from=2026-03-01&to=2026-03-01").get_data(as_text=True)
    assert shown_descriptions(page) == ["Massage late"]


def test_opened_without_dates_the_page_shows_the_last_30_days_and_says_so(app, places):
    from vcpay.clinic_clocks import clinic_zone
    from vcpay.ledger.filters import today_in, visible_clinics

    admin = find_user_by_email(CLINIC_ADMIN)
    today = today_in(visible_clinics(admin))
    zone = clinic_zone(places.gp)
    day_29 = datetime.combine(today - timedelta(days=29), time(0, 1), tzinfo=zone)
    day_30 = datetime.combine(today - timedelta(days=30), time(23, 59), tzinfo=zone)
    payment(places.gp_call, day_29, description="Consult on the first of the 30 days", amount=40_00)
    payment(places.gp_call, day_30, description="Consult a day too old", amount=70_00)
    db.session.commit()
    browser = signed_in(app, CLINIC_ADMIN)

    page = browser.get("/payments/").get_data(as_text=True)
    export = browser.get("/payments/export.csv").get_data(as_text=True)

    assert shown_descriptions(page) == ["Consult on the first of the 30 days"]
    assert f'value="{today - timedelta(days=29)}"' in page and f'value="{today}"' in page
    assert "shows the last 30 days" in page and "A$40.00" in page and "A$70.00" not in page
    assert "first of the 30 days" in export and "too old" not in export
    every = re.search(r'href="([^"]*)">Show every payment', page).group(1).replace("&amp;", "&")
    both = browser.get(every).get_data(as_text=True)
    assert len(shown_descriptions(both)) == 2 and "shows the last 30 days" not in both
    assert 'value=""' in both.split('id="from"', 1)[1].split(">", 1)[0]


def test_the_dates_in_force_carry_to_the_next_page_and_the_export(app, places):
    from tests.ledger_rows import many

    many(places.gp_call, 60, sydney(2026, 3, 1, 9))
    db.session.commit()
    browser = signed_in(app, CLINIC_ADMIN)

    page = browser.get("/payments/?from=&to=&status=settled").get_data(as_text=True)

    older = re.search(r'href="(/payments/\?after=[^"]*)"', page).group(1).replace("&amp;", "&")
    export = re.search(r'href="(/payments/export\.csv[^"]*)"', page).group(1)
    carried = parse_qs(urlsplit(older).query, keep_blank_values=True)
    assert (carried["from"], carried["to"], carried["status"]) == ([""], [""], ["settled"])
    assert len(shown_descriptions(browser.get(older).get_data(as_text=True))) == 10
    assert browser.get(export.replace("&amp;", "&")).get_data(as_text=True).count("\r\n") == 61


def test_totals_cover_the_whole_filter_not_the_page(app, places):
    from vcpay.ledger.filters import read_filter
    from vcpay.ledger.listing import totals_of

    start = sydney(2026, 3, 1, 9)
    for n in range(60):
        payment(places.gp_call, start + timedelta(minutes=n), amount=10_00)
    payment(places.gp_call, start, amount=50_00, state=PaymentState.PARTIALLY_REFUNDED,
            amount_refunded=20_00)  # fmt: skip
    payment(places.gp_call, start, amount=99_00, state=PaymentState.EXPIRED)
    payment(places.foreign_call, start, amount=1_000_00)
    db.session.commit()
    admin = find_user_by_email(CLINIC_ADMIN)

    totals = totals_of(read_filter(admin, EVERY_DAY))

    assert (totals.count, totals.paid_count) == (62, 61)
    assert (totals.gross, totals.refunded, totals.net) == (650_00, 20_00, 630_00)
    page = signed_in(app, CLINIC_ADMIN).get("/payments/?from=&to=").get_data(as_text=True)
    assert "A$650.00" in page and "A$630.00" in page


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-02-28", "to": "2026-03-02"},
        {"from": "2026-03-01", "to": "2026-03-01", "q": "visit"},
        EVERY_DAY,
        {"from": "2025-01-01", "to": "2026-03-31"},
    ],
)
def test_totals_and_takings_read_together_agree_with_each_read_alone(app, places, query):
    from vcpay.ledger.filters import read_filter
    from vcpay.ledger.listing import totals_of
    from vcpay.ledger.takings import daily_takings, totals_and_takings

    start = sydney(2026, 2, 28, 22)
    for n in range(30):
        call = places.physio_call if n % 3 else places.gp_call
        state = [PaymentState.PAID, PaymentState.REFUNDED, PaymentState.EXPIRED][n % 3 - 1]
        payment(call, start + timedelta(hours=n), amount=10_00 + n, state=state,
                amount_refunded=10_00 + n if state == PaymentState.REFUNDED else 0,
                description="Visit" if n % 2 else "Consultation")  # fmt: skip
    db.session.commit()
    ledger = read_filter(find_user_by_email(ORG_ADMIN), query)

    totals, takings = totals_and_takings(ledger)

    assert totals == totals_of(ledger)
    assert takings == daily_takings(ledger)
    assert totals.count > 0


def test_status_groups_and_each_state(app, places):
    from vcpay.ledger.filters import read_filter
    from vcpay.ledger.listing import totals_of

    at = sydney(2026, 3, 1, 9)
    for state in PaymentState:
        payment(places.gp_call, at, state=state, amount=100_00, amount_refunded=0)
    db.session.commit()
    admin = find_user_by_email(CLINIC_ADMIN)

    def count(status):
        return totals_of(read_filter(admin, EVERY_DAY | {"status": status})).count

    assert count("settled") == 3
    assert count("open") == 2
    assert count("any_refund") == 2
    assert count("unpaid") == 3
    assert all(count(state.value) == 1 for state in PaymentState)


def test_search_is_case_insensitive_and_takes_wildcards_literally(app, places):
    from vcpay.ledger.filters import read_filter
    from vcpay.ledger.listing import page_of

    at = sydney(2026, 3, 1, 9)
    payment(places.gp_call, at, description="Follow-up 100% covered", receipt_number="1234-5678")
    payment(places.gp_call, at, description="Consultation", patient_name="Љубица Јовановић")
    payment(places.gp_call, at, description="Script", patient_email="Robin_Lee@Example.org")
    payment(places.gp_call, at, description="Other", patient_email="robinXlee@example.org")
    db.session.commit()
    admin = find_user_by_email(CLINIC_ADMIN)

    def found(text):
        return sorted(
            p.description for p in page_of(read_filter(admin, EVERY_DAY | {"q": text}), None).rows
        )

    assert found("100%") == ["Follow-up 100% covered"]
    assert found("%") == ["Follow-up 100% covered"]
    assert found("1234-5678") == ["Follow-up 100% covered"]
    assert found("robin_lee@") == ["Script"]
    assert found("FOLLOW-UP") == ["Follow-up 100% covered"]
    assert found("Јовановић") == ["Consultation"]


def test_the_clinician_filter(app, places):
    at = sydney(2026, 3, 1, 9)
    payment(places.gp_call, at, description="Consult by Jordan")
    payment(places.locum_call, at, description="Consult by the locum")
    db.session.commit()
    admin = signed_in(app, CLINIC_ADMIN)

    page = admin.get(f"/payments/?from=&to=&clinician={places.other_clinician.id}").get_data(
        as_text=True
    )

    assert shown_descriptions(page) == ["Consult by the locum"]


def test_a_clinician_sees_only_the_requests_they_made(app, places):
    at = sydney(2026, 3, 1, 9)
    mine = payment(places.gp_call, at, description="Consult by Jordan")
    theirs = payment(places.locum_call, at, description="Consult by the locum")
    db.session.commit()
    clinician = signed_in(app, CLINICIAN)

    page = clinician.get("/payments/?from=&to=").get_data(as_text=True)

    assert shown_descriptions(page) == ["Consult by Jordan"]
    assert clinician.get(f"/payments/{mine.id}").status_code == 200
    assert clinician.get(f"/payments/{theirs.id}").status_code == 403
    export = clinician.get("/payments/export.csv?from=&to=").get_data(as_text=True)
    assert "Consult by Jordan" in export and "locum" not in export


def test_an_organisation_admin_sees_every_clinic_and_can_choose_one(app, places):
    at = sydney(2026, 3, 1, 9)
    payment(places.gp_call, at, description="Consult at the GP")
    payment(places.physio_call, at, description="Massage at physio")
    payment(places.foreign_call, at, description="Consult at Riverside")
    db.session.commit()
    admin = signed_in(app, ORG_ADMIN)

    everything = admin.get("/payments/?from=&to=").get_data(as_text=True)
    physio = admin.get(f"/payments/?from=&to=&clinic={places.physio.id}").get_data(as_text=True)

    assert sorted(shown_descriptions(everything)) == ["Consult at the GP", "Massage at physio"]
    assert shown_descriptions(physio) == ["Massage at physio"]
    assert f'<option value="{places.physio.id}" selected>' in physio


def test_another_organisations_clinic_payment_and_export_are_not_found(app, places):
    foreign = payment(places.foreign_call, sydney(2026, 3, 1, 9))
    db.session.commit()
    admin = signed_in(app, CLINIC_ADMIN)

    assert admin.get(f"/payments/{foreign.id}").status_code == 404
    assert admin.get(f"/payments/?clinic={places.foreign.id}").status_code == 404
    assert admin.get(f"/payments/export.csv?clinic={places.foreign.id}").status_code == 404
    # The physiotherapy clinic is Harbourside's, but the GP's clinic admin has no role there.
    assert admin.get(f"/payments/?clinic={places.physio.id}").status_code == 404
    receipt = {"email": "x@example.org", "resend_key": "k" * 24}
    assert admin.post(f"/payments/{foreign.id}/receipt", data=receipt).status_code in (400, 404)


def test_someone_signed_out_is_sent_to_sign_in(app, places):
    response = app.test_client().get("/payments/")
    assert response.status_code == 302 and "/sign-in" in response.location


@pytest.mark.parametrize(
    "query",
    [
        "from=2026-02-30", "from=yesterday", "to=99999-01-01", "from=2026-03-02&to=2026-03-01",
        "status=paidish", "clinic=abc", "clinic=99999999999", "clinician=-1", "clinician=²",
        "after=garbage", "before=eyJhIjoxfQ", "q=" + "x" * 201, "from=0001-01-01",
    ],
)  # fmt: skip
def test_a_bad_filter_is_explained_never_a_server_error(app, places, query):
    admin = signed_in(app, ORG_ADMIN)

    page = admin.get(f"/payments/?{query}")
    export = admin.get(f"/payments/export.csv?{query}")

    assert page.status_code == 400
    assert 'class="notice error"' in page.get_data(as_text=True)
    export.get_data()
    assert export.status_code in (200, 400)  # the export ignores where a page starts
    assert admin.get(f"/payments/?{query}&x=%00").status_code == 400


def test_a_tampered_cursor_is_refused(app, places):
    from tests.ledger_rows import many

    many(places.gp_call, 60, sydney(2026, 3, 1, 9))
    db.session.commit()
    admin = signed_in(app, CLINIC_ADMIN)
    page = admin.get("/payments/?from=&to=").get_data(as_text=True)
    cursor = re.search(r'after=([^&"]+)', page).group(1)

    tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")

    assert admin.get(f"/payments/?after={cursor}").status_code == 200
    refused = admin.get(f"/payments/?after={tampered}")
    assert refused.status_code == 400
    assert "start from the first page" in refused.get_data(as_text=True)


def test_the_chart_shows_each_days_takings_with_labels(app, places):
    payment(places.gp_call, sydney(2026, 3, 1, 23, 30), amount=40_00)
    payment(places.gp_call, sydney(2026, 3, 3, 10), amount=125_50)
    payment(places.gp_call, sydney(2026, 3, 3, 11), amount=99_00, state=PaymentState.EXPIRED)
    db.session.commit()
    admin = signed_in(app, CLINIC_ADMIN)

    page = admin.get("/payments/?from=2026-03-01&to=2026-03-04").get_data(as_text=True)
    svg = page[page.index("<svg") : page.index("</svg>")]

    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    assert svg.count('class="bar"') == 4  # one a day, empty days too
    assert "1 Mar 2026: A$40.00" in svg and "3 Mar 2026: A$125.50" in svg
    assert "A$165.50 in all" in svg
    # Drawn on the server: no script of its own, nothing fetched from elsewhere (the page's
    # only scripts are vcpay's own, such as the admins' idle warning).
    assert "<script" not in svg and "cdn" not in page.lower()
    assert re.findall(r"<script[^>]*>", page) == re.findall(
        r'<script src="/static/[^"]+"[^>]*>', page
    )


def test_the_chart_axis_rounds_up():
    from vcpay.ledger.chart import axis_top

    assert [axis_top(n) for n in (0, 1, 99, 101, 125_50, 260_00)] == [
        100_00, 1, 100, 200, 200_00, 500_00,
    ]  # fmt: skip


def test_the_payments_page_is_in_the_navigation_and_on_client_payments(app, places):
    admin = signed_in(app, CLINIC_ADMIN)

    home = admin.get("/").get_data(as_text=True)
    clinic_page = admin.get(f"/client-payments/clinics/{places.gp.id}").get_data(as_text=True)

    assert 'href="/payments/"' in home
    assert f'href="/payments/?clinic={places.gp.id}"' in clinic_page
    assert f'href="/payments/clinics/{places.gp.id}/time-zone"' in clinic_page
    assert 'href="/payments/"' in signed_in(app, CLINICIAN).get("/").get_data(as_text=True)


def test_a_clinic_unknown_to_anyone_is_not_found(app, places):
    admin = signed_in(app, ORG_ADMIN)
    assert admin.get("/payments/?clinic=2147483647").status_code == 404
    assert db.session.get(Clinic, 2147483647) is None


def test_a_zone_the_database_does_not_know_still_draws_the_chart(app, places):
    payment(places.gp_call, sydney(2026, 3, 1, 9), amount=40_00)
    places.gp.time_zone = "Mars/Olympus_Mons"  # set behind the form's back
    db.session.commit()

    page = signed_in(app, CLINIC_ADMIN).get("/payments/?from=2026-02-28&to=2026-03-02")

    assert page.status_code == 200
    assert "A$40.00 in all" in page.get_data(as_text=True)
