"""The schema: migrations from empty on every backend, and models that agree with them."""

import re
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from tests import factories, services
from vcpay import create_app
from vcpay.database import SEARCH_INDEXES, declared_by_the_models
from vcpay.extensions import db
from vcpay.people.models import Clinic


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    with services.empty_database(request.param, tmp_path) as url:
        yield url


def migrated_app(url: str):
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "CELERY_BROKER_URL": "memory://"})
    with app.app_context():
        upgrade()
    return app


VERSIONS = Path(__file__).resolve().parent.parent / "migrations"
DATE_FIRST = re.compile(r"^\d{4}_\d{2}_\d{2}_\d{4}_(?P<rev>[0-9a-f]{12})_\w+\.py$")


def test_listing_the_migrations_shows_their_history():
    """Named date and time first, so ``ls`` lists them in the order they apply, one head."""
    script = ScriptDirectory(str(VERSIONS))
    assert len(script.get_heads()) == 1
    history = [revision.revision for revision in reversed(list(script.walk_revisions()))]
    names = sorted(path.name for path in (VERSIONS / "versions").glob("*.py"))
    assert [DATE_FIRST.match(name) for name in names].count(None) == 0, names
    assert [DATE_FIRST.match(name)["rev"] for name in names] == history


def test_upgrade_from_empty_creates_every_table(empty_database):
    app = migrated_app(empty_database)
    with app.app_context():
        tables = set(sa.inspect(db.engine).get_table_names())
        db.engine.dispose()
    assert set(db.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_models_and_migrations_agree(empty_database):
    app = migrated_app(empty_database)
    with app.app_context(), db.engine.connect() as connection:
        options = {"compare_type": True, "include_object": declared_by_the_models}
        context = MigrationContext.configure(connection, opts=options)
        differences = compare_metadata(context, db.metadata)
    with app.app_context():
        db.engine.dispose()
    assert differences == [], "run `flask --app wsgi db migrate` to add a migration"


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
def test_postgresql_searches_payments_through_trigram_indexes(empty_database):
    """The search is ILIKE '%…%' on four columns; with pg_trgm (in PostgreSQL's contrib, here
    and in CI) the migrations give each a GIN trigram index, and a search for a receipt number
    is answered through them instead of by reading every row."""
    from vcpay.ledger.listing import like_pattern

    app = migrated_app(empty_database)
    with app.app_context():
        names = {index["name"] for index in sa.inspect(db.engine).get_indexes("payment_requests")}
        with db.engine.connect() as connection:
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = (
                connection.exec_driver_sql(
                    "EXPLAIN SELECT id FROM payment_requests WHERE receipt_number ILIKE %(p)s "
                    "OR description ILIKE %(p)s OR patient_name ILIKE %(p)s "
                    "OR patient_email ILIKE %(p)s",
                    {"p": like_pattern("1003-6257")},
                )
                .scalars()
                .all()
            )
        db.engine.dispose()
    assert names >= SEARCH_INDEXES, names
    assert "ix_payment_requests_receipt_number_trgm" in "\n".join(plan), plan


def test_downgrade_to_empty_and_back(empty_database):
    app = migrated_app(empty_database)
    with app.app_context():
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        upgrade()
        assert "clinics" in sa.inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_constraints_follow_the_naming_convention(app):
    names = {c.name for c in Clinic.__table__.constraints}
    assert {"pk_clinics", "uq_clinics_organisation_id_name"} <= names
    assert "fk_clinics_organisation_id_organisations" in names


def test_times_are_stored_in_utc_and_read_back_aware(app):
    org = factories.organisation("Timekeepers")
    db.session.commit()
    db.session.expire_all()
    assert org.created_at.utcoffset().total_seconds() == 0


def test_naive_times_are_refused(app):
    org = factories.organisation("Naive", "Naive Clinic")
    org.clinics[0].gateway_enabled_at = datetime(2026, 1, 1)  # noqa: DTZ001 - the point of it
    with pytest.raises(sa.exc.StatementError, match="naive datetimes"):
        db.session.commit()
    db.session.rollback()


def test_an_organisation_has_at_most_one_telehealth_manager(app):
    org = factories.organisation("One Manager Health")
    factories.org_admin("first@one.example", org, manager=True)
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        factories.org_admin("second@one.example", org, manager=True)
    db.session.rollback()
    factories.org_admin("third@one.example", org, manager=False)
    db.session.commit()
    assert org.telehealth_manager.email == "first@one.example"


def test_clinic_roles_are_checked_by_the_database(app):
    org = factories.organisation("Checked", "Checked Clinic")
    user = factories.person("checked@one.example")
    db.session.commit()
    with pytest.raises(sa.exc.IntegrityError):
        db.session.execute(
            sa.text(
                "INSERT INTO clinic_memberships (user_id, clinic_id, role, created_at) "
                "VALUES (:u, :c, 'superuser', CURRENT_TIMESTAMP)"
            ),
            {"u": user.id, "c": org.clinics[0].id},
        )
        db.session.flush()
    db.session.rollback()


def test_timeline_sentences_written_before_codes_become_codes_and_back(empty_database):
    """The English sentences of old timeline entries are read back into codes on upgrade; a
    downgrade writes the English sentence of each coded entry back."""
    from vcpay.enablement.models import EnablementRequest, RequestEvent

    app = migrated_app(empty_database)
    with app.app_context():
        org = factories.organisation("Timeline Health", "Timeline Clinic")
        manager = factories.org_admin("manager@timeline.example", org, manager=True)
        request = EnablementRequest(organisation=org, requester=manager)
        request.events = [
            RequestEvent(kind="submitted", message="Sent to Morgan Reyes for endorsement."),
            RequestEvent(kind="commented", message="A sentence vcpay never wrote."),
            RequestEvent(kind="raised", params={"key": "HD-7"}),
        ]
        db.session.add(request)
        db.session.commit()
        downgrade(revision="0e0f1e316ab0")
        events = sa.table("enablement_request_events", sa.column("id"), sa.column("message"))
        query = sa.select(events.c.message).order_by(events.c.id)
        assert list(db.session.scalars(query)) == [
            "Sent to Morgan Reyes for endorsement.",
            "A sentence vcpay never wrote.",
            "Raised in the service desk as HD-7.",
        ]
        db.session.commit()
        upgrade()
        db.session.expire_all()
        read = db.session.scalars(sa.select(RequestEvent).order_by(RequestEvent.id)).all()
        assert [e.params for e in read] == [{"name": "Morgan Reyes"}, None, {"key": "HD-7"}]
        db.session.remove()
        db.engine.dispose()
