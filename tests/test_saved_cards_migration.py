"""The saved cards migration rebuilds tables on SQLite (a column made nullable, a foreign key
added, a column dropped on the way down): the rows that point at them are all still there
afterwards, up and down, on SQLite and PostgreSQL."""

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select

from tests import factories, services
from tests.ledger_rows import call_in, payment, sydney
from vcpay import create_app
from vcpay.client_payments.models import StripeLink
from vcpay.database import utcnow
from vcpay.extensions import db
from vcpay.payments.models import PaymentRefund, PaymentRequest


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    with services.empty_database(request.param, tmp_path) as url:
        yield url


def counts() -> tuple[int, ...]:
    """How many payments, refunds and links; the session is left with no transaction open
    (on PostgreSQL an open one would hold the lock the migration waits for)."""
    found = tuple(
        db.session.scalar(select(func.count(model.id)))
        for model in (PaymentRequest, PaymentRefund, StripeLink)
    )
    db.session.remove()
    return found


def test_rows_pointing_at_rebuilt_tables_survive_up_and_down(empty_database):
    app = create_app({"SQLALCHEMY_DATABASE_URI": empty_database, "CELERY_BROKER_URL": "memory://"})
    with app.app_context():
        upgrade()
        [clinic] = factories.organisation("Migrating Care", "One").clinics
        now = utcnow()
        db.session.add(
            StripeLink(clinic=clinic, account_id="acct_one", linked_at=now, refreshed_at=now,
                       display_name="One Pty Ltd", name="One", is_default=True, state="linked")
        )  # fmt: skip
        paid = payment(call_in(clinic, None), sydney(2026, 11, 30, 9), amount_refunded=100)
        db.session.add(PaymentRefund(payment_request=paid, amount=100, updated_at=now))
        db.session.commit()
        assert counts() == (1, 1, 1)
        downgrade(revision="5e1f0b7c3a92")  # then up through a migration that writes rows
        assert counts() == (1, 1, 1)
        upgrade()
        assert counts() == (1, 1, 1)
        db.session.remove()
