"""Keyset pages of the Payments page: newest first by (created_at, id), stable while newer
payments arrive, and on PostgreSQL an index seek with no OFFSET and no COUNT."""

from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.conftest import sign_in
from tests.ledger_rows import call_in, many, payment, sydney
from vcpay.extensions import db
from vcpay.ledger import keyset
from vcpay.ledger.filters import read_filter
from vcpay.ledger.listing import _keys, page_of
from vcpay.people.demo import seed_demo
from vcpay.people.services import find_user_by_email

ORG_ADMIN = "orgadmin@harbourside.example"
EVERY_DAY = {"from": "", "to": ""}  # dates left empty: no limit (the rows here are in March)


@pytest.fixture
def calls(app):
    organisation = seed_demo(enable_gateway=True)
    gp, physio = sorted(organisation.clinics, key=lambda c: c.name)
    physio.time_zone = "Australia/Perth"
    clinician = find_user_by_email("clinician@harbourside.example")
    made = call_in(gp, clinician), call_in(physio, clinician)
    db.session.commit()
    return made


def walk(ledger, size, between_pages=lambda: None) -> list[int]:
    seen, position = [], None
    while True:
        page = page_of(ledger, position, size=size)
        seen += [row.id for row in page.rows]
        if page.older is None:
            return seen
        between_pages()
        position = page.older


def test_pages_go_newest_first_across_clinics_with_ties_broken_by_id(app, calls):
    gp_call, physio_call = calls
    start = sydney(2026, 3, 1, 9)
    rows = [payment(gp_call, start + timedelta(minutes=n // 3)) for n in range(20)]
    rows += [payment(physio_call, start + timedelta(minutes=n)) for n in range(7)]
    db.session.commit()
    ledger = read_filter(find_user_by_email(ORG_ADMIN), EVERY_DAY)

    seen = walk(ledger, size=4)

    expected = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
    assert seen == [r.id for r in expected]


def test_payments_arriving_between_pages_repeat_nothing_and_skip_nothing(app, calls):
    gp_call, physio_call = calls
    many(gp_call, 45, sydney(2026, 3, 1, 9))
    many(physio_call, 20, sydney(2026, 3, 1, 9, 3))
    db.session.commit()
    before = {row for row in db.session.scalars(text("SELECT id FROM payment_requests"))}
    ledger = read_filter(find_user_by_email(ORG_ADMIN), EVERY_DAY)
    arrivals = iter(range(100))

    def newer_payments_arrive():
        n = next(arrivals)
        payment(gp_call if n % 2 else physio_call, sydney(2026, 3, 2, 9) + timedelta(seconds=n))
        db.session.commit()

    seen = walk(ledger, size=10, between_pages=newer_payments_arrive)

    assert len(seen) == len(set(seen)) == len(before)
    assert set(seen) == before


def test_newer_goes_back_to_the_page_before(app, calls):
    gp_call, _physio = calls
    many(gp_call, 25, sydney(2026, 3, 1, 9))
    db.session.commit()
    ledger = read_filter(find_user_by_email(ORG_ADMIN), EVERY_DAY)
    first = page_of(ledger, None, size=10)
    second = page_of(ledger, first.older, size=10)

    back = page_of(ledger, second.newer, newer=True, size=10)

    assert [r.id for r in back.rows] == [r.id for r in first.rows]
    assert back.newer is None and first.newer is None and second.newer is not None


def test_the_pages_links_carry_the_filter_and_a_cursor(app, calls):
    gp_call, _physio = calls
    many(gp_call, 60, sydney(2026, 3, 1, 9))
    db.session.commit()
    browser = app.test_client()
    sign_in(browser, ORG_ADMIN)

    page = browser.get("/payments/?from=&to=&status=settled&q=Visit").get_data(as_text=True)

    link = page.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert "status=settled" in link and "q=Visit" in link and "after=" in link
    following = browser.get(link.replace("&amp;", "&"))
    assert following.status_code == 200
    assert 'rel="prev"' in following.get_data(as_text=True)


def test_the_totals_and_the_chart_are_read_on_the_first_page_only(app, calls, monkeypatch):
    from vcpay.ledger import views

    gp_call, _physio = calls
    many(gp_call, 60, sydney(2026, 3, 1, 9))
    db.session.commit()
    read = []
    real = views.totals_and_takings
    monkeypatch.setattr(views, "totals_and_takings", lambda ledger: read.append(1) or real(ledger))
    browser = app.test_client()
    sign_in(browser, ORG_ADMIN)

    first = browser.get("/payments/?from=&to=&q=Visit").get_data(as_text=True)
    link = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = browser.get(link.replace("&amp;", "&")).get_data(as_text=True)
    back = second.split('rel="prev"')[0].rsplit('href="', 1)[1].split('"')[0]
    first_again = browser.get(back.replace("&amp;", "&")).get_data(as_text=True)

    assert read == [1, 1]  # the first page, and again when the reader comes back to it
    assert '<dl class="totals">' in first and "<svg" in first
    assert '<dl class="totals">' not in second and "<svg" not in second
    assert 'href="/payments/?q=Visit&amp;from=&amp;to="' in second  # to the totals
    assert "/payments/export.csv?q=Visit&amp;from=&amp;to=" in second  # from any page
    assert '<dl class="totals">' in first_again


def test_a_cursor_is_signed():
    from vcpay import create_app

    with create_app({"TESTING": True}).app_context():
        position = keyset.Position(sydney(2026, 3, 1, 9), 42)
        assert keyset.decode(keyset.encode(position)) == position
        with pytest.raises(keyset.CursorInvalid):
            keyset.decode(keyset.encode(position)[:-2] + "xx")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # its query plan
def test_on_postgresql_a_deep_page_is_an_index_seek_without_offset_or_count(app, calls):
    assert db.engine.dialect.name == "postgresql"
    gp_call, physio_call = calls
    many(gp_call, 3000, sydney(2025, 1, 1, 9), step=timedelta(minutes=3))
    many(physio_call, 3000, sydney(2025, 1, 1, 9), step=timedelta(minutes=3))
    db.session.execute(text("ANALYZE payment_requests"))
    ledger = read_filter(find_user_by_email(ORG_ADMIN), EVERY_DAY)
    deep = page_of(ledger, page_of(ledger, None).older)

    statement = _keys(ledger, deep.older, 51, newer=False)
    sql = str(statement.compile(db.engine, compile_kwargs={"literal_binds": True}))
    plan = "\n".join(row[0] for row in db.session.execute(text(f"EXPLAIN {sql}")))

    assert "OFFSET" not in sql.upper() and "COUNT(" not in sql.upper()
    assert "ix_payment_requests_clinic_id_created_at" in plan, plan
    assert "Seq Scan on payment_requests" not in plan, plan
