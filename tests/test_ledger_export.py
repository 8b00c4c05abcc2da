"""The CSV export: what an accountant's spreadsheet reads back, cell for cell, and a body
streamed in batches, never built whole."""

import csv
import io
from datetime import timedelta
from types import GeneratorType

import pytest

from tests.conftest import sign_in
from tests.ledger_rows import call_in, many, payment, sydney
from vcpay import accounts_csv
from vcpay.extensions import db
from vcpay.ledger import ledger_csv
from vcpay.ledger.filters import read_filter
from vcpay.payments.models import PaymentState
from vcpay.payouts.models import Payout, PayoutTransaction
from vcpay.people.demo import seed_demo
from vcpay.people.services import find_user_by_email

CLINIC_ADMIN = "clinicadmin@harbourside.example"
HOSTILE = [
    'Consult, follow-up; "urgent"',
    "Line one\nline two\r\nline three",
    "Преглед код др Јовановић — ђ, ж, љ, њ 🩺😀",
    '=HYPERLINK("http://evil.example","x")',
    "+61 2 5550 0100",
    "-2+3",
    "@SUM(A1:A2)",
    "\tTabbed",
    "\rReturned",
]


@pytest.fixture
def gp_call(app):
    organisation = seed_demo(enable_gateway=True)
    gp = next(c for c in organisation.clinics if c.name == "Harbourside GP Clinic")
    call = call_in(gp, find_user_by_email("clinician@harbourside.example"))
    db.session.commit()
    return call


def exported(app, query="") -> tuple[bytes, list[dict]]:
    browser = app.test_client()
    sign_in(browser, CLINIC_ADMIN)
    every_day = "from=&to=" if "from=" not in query else ""  # the rows are in the past
    response = browser.get(f"/payments/export.csv?{every_day}&{query.lstrip('?')}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    body = response.get_data()
    return body, list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


def test_hostile_text_comes_back_whole_and_formulas_are_neutralised(app, gp_call):
    for n, text in enumerate(HOSTILE):
        payment(gp_call, sydney(2026, 3, 1, 9) + timedelta(minutes=n), description=text,
                patient_name=text[:80], amount=12_34)  # fmt: skip
    db.session.commit()

    body, rows = exported(app)

    assert body.startswith(b"\xef\xbb\xbf")
    by_id = sorted(rows, key=lambda row: int(row["Request id"]))
    for row, text in zip(by_id, HOSTILE, strict=True):
        expected = "'" + text if text[0] in "=+-@\t\r" else text
        assert row["Description"] == expected
        assert row["Patient"] == expected[: len(expected) - len(text) + 80]
    assert by_id[2]["Description"].endswith("🩺😀")


def test_columns_as_an_accountant_reads_them(app, gp_call):
    paid = payment(
        gp_call, sydney(2026, 3, 1, 23, 30), amount=150_00, receipt_number="1234-5678",
        state=PaymentState.PARTIALLY_REFUNDED, amount_refunded=50_00, stripe_fee=285,
        charge_id="ch_1", patient_name="Pat Citizen", patient_email="pat@example.org",
    )  # fmt: skip
    open_one = payment(gp_call, sydney(2026, 3, 2, 9), amount=20_00, state=PaymentState.REQUESTED)
    payout = Payout(
        stripe_account_id="acct_ledger", payout_id="po_123", amount=9715, currency="aud",
        status="paid", arrival_date=paid.created_at, created=paid.created_at,
        updated_at=paid.created_at,
    )  # fmt: skip
    charge = PayoutTransaction(
        balance_transaction_id="txn_1", type="charge", amount=150_00, fee=285, net=14715,
        currency="aud", source_id="ch_1", payment_request_id=paid.id, created=paid.created_at,
    )  # fmt: skip
    payout.transactions.append(charge)
    db.session.add(payout)
    db.session.commit()

    _body, rows = exported(app)
    newest, oldest = rows

    assert oldest["Date and time"] == "2026-03-01T23:30:00+11:00"
    assert oldest["Clinic"] == "Harbourside GP Clinic"
    assert (oldest["Amount"], oldest["Refunded"], oldest["Fee"], oldest["Net"]) == (
        "150.00", "50.00", "2.85", "97.15",
    )  # fmt: skip
    assert oldest["Status"] == "Partly refunded" and oldest["Currency"] == "AUD"
    assert oldest["Receipt number"] == "1234-5678" and oldest["Payout"] == "po_123"
    assert oldest["Clinician"] == "Dr Jordan Rivers" and oldest["Request id"] == str(paid.id)
    assert oldest["Patient email"] == "pat@example.org"
    assert newest["Request id"] == str(open_one.id)
    assert (newest["Fee"], newest["Net"], newest["Payout"], newest["Paid at"]) == ("", "", "", "")


def test_the_file_is_named_for_the_clinic_and_the_days(app, gp_call):
    browser = app.test_client()
    sign_in(browser, CLINIC_ADMIN)
    clinic = gp_call.clinic_id

    response = browser.get(f"/payments/export.csv?clinic={clinic}&from=2026-03-01&to=2026-03-31")
    response.get_data()

    disposition = response.headers["Content-Disposition"]
    assert disposition == (
        'attachment; filename="payments-harbourside-gp-clinic-2026-03-01-to-2026-03-31.csv"'
    )
    assert response.headers["Cache-Control"] == "no-store"


def test_the_export_follows_the_filter(app, gp_call):
    payment(gp_call, sydney(2026, 3, 1, 9), description="March visit")
    payment(gp_call, sydney(2026, 4, 1, 9), description="April visit")
    payment(gp_call, sydney(2026, 4, 2, 9), description="Expired visit", state=PaymentState.EXPIRED)
    db.session.commit()

    _body, rows = exported(app, "?from=2026-04-01&status=settled")

    assert [row["Description"] for row in rows] == ["April visit"]


def test_many_rows_are_streamed_in_batches(app, gp_call, monkeypatch):
    many(gp_call, 1200, sydney(2026, 1, 1, 9))
    db.session.commit()
    batches_read = []
    real_rows = ledger_csv._rows

    def rows_read(*args):
        rows = real_rows(*args)
        batches_read.append(len(rows))
        return rows

    monkeypatch.setattr(ledger_csv, "_rows", rows_read)
    browser = app.test_client()
    sign_in(browser, CLINIC_ADMIN)

    response = browser.get("/payments/export.csv?from=&to=")
    assert response.is_streamed
    chunks = iter(response.response)
    first = next(chunks)

    assert first.startswith("\ufeff".encode()) and b"Date and time" in first
    assert batches_read == []  # the header went out before any row was read
    rest = b"".join(chunks)
    response.close()
    assert batches_read == [500, 500, 200]
    assert (first + rest).count(b"\r\n") == 1201


def test_the_body_is_a_generator_of_batches(app, gp_call):
    many(gp_call, 30, sydney(2026, 1, 1, 9))
    db.session.commit()
    ledger = read_filter(find_user_by_email(CLINIC_ADMIN), {"from": "", "to": ""})

    chunks = ledger_csv.csv_chunks(ledger, batch_size=10)

    assert isinstance(chunks, GeneratorType)
    assert len(list(chunks)) == 1 + 3


def test_cells_that_look_like_formulas():
    assert [accounts_csv.text_cell(t) for t in ("=1", "+1", "-1", "@x", "\t", "\r", "a=1")] == [
        "'=1", "'+1", "'-1", "'@x", "'\t", "'\r", "a=1",
    ]  # fmt: skip
    assert accounts_csv.dollars(5) == "0.05" and accounts_csv.dollars(-30) == "-0.30"
