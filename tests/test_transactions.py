"""One rule for transactions: services flush, the view, task or command commits.

Read from the source: a ``commit()`` appears only in modules that hold routes, tasks or
commands, and in ``vcpay/transactions.py``, whose two named commits (``commit_claim`` and
``commit_unit``) are the only ones a service may use, each for a stated reason. Then shown
in behaviour: what a service wrote is gone if its caller rolls back instead of committing.
"""

import ast
from pathlib import Path

from sqlalchemy import func, select

from tests.payment_steps import CLINICIAN
from vcpay.calls.models import Call, CallEvent
from vcpay.calls.services import end_call, join_as_patient, start_call
from vcpay.extensions import db
from vcpay.people.services import find_user_by_email
from vcpay.transactions import after_commit

ROOT = Path(__file__).resolve().parent.parent
CALLERS = {"tasks.py", "cli.py"}  # besides modules with routes
NAMED_COMMITS = ROOT / "vcpay" / "transactions.py"


def _has_routes(tree: ast.AST) -> bool:
    return any(
        isinstance(decorator, ast.Call)
        and isinstance(decorator.func, ast.Attribute)
        and decorator.func.attr == "route"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        for decorator in node.decorator_list
    )


def stray_commits(root: Path = ROOT) -> list[str]:
    """``commit()`` calls outside the modules that may end a transaction."""
    found = []
    for path in sorted((root / "vcpay").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if path.name in CALLERS or path == root / NAMED_COMMITS.relative_to(ROOT):
            continue
        if _has_routes(tree):
            continue
        found += [
            f"{path.relative_to(root)}:{node.lineno}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "commit"
        ]
    return found


def test_services_never_commit_on_their_own():
    assert stray_commits() == [], "flush in services; use commit_claim or commit_unit if meant"


def test_a_commit_in_a_service_is_found(tmp_path):
    (tmp_path / "vcpay" / "feature").mkdir(parents=True)
    (tmp_path / "vcpay" / "feature" / "services.py").write_text(
        "from vcpay.extensions import db\n\ndef act():\n    db.session.commit()\n"
    )
    (tmp_path / "vcpay" / "feature" / "views.py").write_text(
        "@blueprint.route('/')\ndef page():\n    db.session.commit()\n"
    )
    assert stray_commits(tmp_path) == ["vcpay/feature/services.py:4"]


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def test_starting_joining_and_ending_a_call_are_kept_only_by_the_callers_commit(app, demo):
    clinic = demo.clinics[0]
    clinician = find_user_by_email(CLINICIAN)
    call = start_call(clinic, clinician, "Pat Citizen, 10:30")
    join_as_patient(call, "Pat Citizen")
    db.session.rollback()
    assert (_count(Call), _count(CallEvent)) == (0, 0)

    call = start_call(clinic, clinician, "Pat Citizen, 10:30")
    db.session.commit()
    end_call(call)
    db.session.rollback()
    assert db.session.get(Call, call.id).is_open  # the end was never committed


def test_what_waits_for_the_commit_waits_for_the_outer_one_not_a_savepoint(app):
    """A refund recorded in a savepoint used to announce the payment's call event at the
    savepoint's release: the screens read before the row was committed, and missed it."""
    ran = []
    db.session.execute(select(1))
    after_commit(db.session(), lambda: ran.append("announced"))
    with db.session.begin_nested():
        db.session.execute(select(2))
    assert ran == []  # released a savepoint: nothing committed yet
    db.session.commit()
    assert ran == ["announced"]
    db.session.commit()
    assert ran == ["announced"]  # once
