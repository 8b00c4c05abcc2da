"""Concurrent webhook requests store their events together: one statement and one commit a
group, each request answered after its own row is committed, or 5xx when its group failed."""

import threading
import time
from collections import Counter

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.stripe_events import event, post_event
from vcpay.extensions import db
from vcpay.webhooks import inbox
from vcpay.webhooks.grouping import GroupedWriter, GroupFailed
from vcpay.webhooks.models import StripeEvent


class HeldWrites:
    """A ``write`` for GroupedWriter that records each group and can hold the first one
    until the others have gathered, so that the groups are known in advance."""

    def __init__(self, write, hold_first: bool = True):
        self.write = write
        self.groups: list[list] = []
        self.writing = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()

    def __call__(self, rows: list[dict]) -> dict:
        self.groups.append([row["key"] for row in rows])
        self.writing.set()
        assert self.release.wait(10)
        return self.write(rows)


def numbered(rows: list[dict]) -> dict:
    return {row["key"]: int(row["key"].split("-")[1]) for row in rows}


def store_in_threads(writer: GroupedWriter, keys: list[str], store=None) -> dict:
    """Each key stored from its own thread; each thread's outcome, by position."""
    outcomes: dict[int, object] = {}

    def one(position: int, key: str) -> None:
        try:
            outcomes[position] = (store or writer.store)({"key": key})
        except GroupFailed as failure:
            outcomes[position] = failure

    threads = [threading.Thread(target=one, args=(n, key)) for n, key in enumerate(keys)]
    for thread in threads:
        thread.start()
        time.sleep(0.002)  # they gather in this order
    for thread in threads:
        thread.join(10)
    return outcomes


def gathered(writer: GroupedWriter, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(writer.gathered) < count:
        assert time.monotonic() < deadline, f"only {len(writer.gathered)} gathered"
        time.sleep(0.005)


def test_requests_that_arrive_while_a_group_is_written_form_the_next_group_in_order():
    writes = HeldWrites(numbered)
    writer = GroupedWriter(writes, key="key")
    first = threading.Thread(target=writer.store, args=({"key": "evt-0"},))
    first.start()
    assert writes.writing.wait(5)
    later = threading.Thread(
        target=lambda: store_in_threads(writer, [f"evt-{n}" for n in range(1, 8)])
    )
    later.start()
    gathered(writer, 7)
    writes.release.set()
    later.join(10), first.join(10)
    assert writes.groups == [["evt-0"], [f"evt-{n}" for n in range(1, 8)]]


def test_each_request_learns_its_own_row_and_a_lone_request_waits_for_nobody():
    writer = GroupedWriter(numbered, key="key")
    started = time.perf_counter()
    assert writer.store({"key": "evt-41"}) == 41
    assert time.perf_counter() - started < 0.05  # no timer: written at once
    outcomes = store_in_threads(writer, [f"evt-{n}" for n in range(50)])
    assert outcomes == {n: n for n in range(50)}


def test_groups_are_limited_and_written_oldest_first():
    writes = HeldWrites(numbered)
    writer = GroupedWriter(writes, key="key", limit=3)
    first = threading.Thread(target=writer.store, args=({"key": "evt-0"},))
    first.start()
    assert writes.writing.wait(5)
    later = threading.Thread(
        target=lambda: store_in_threads(writer, [f"evt-{n}" for n in range(1, 8)])
    )
    later.start()
    gathered(writer, 7)
    writes.release.set()
    later.join(10), first.join(10)
    assert writes.groups == [
        ["evt-0"],
        ["evt-1", "evt-2", "evt-3"],
        ["evt-4", "evt-5", "evt-6"],
        ["evt-7"],
    ]


def test_a_failed_group_fails_every_request_in_it_and_no_other():
    def fail_with_evt_3(rows: list[dict]) -> dict:
        if any(row["key"] == "evt-3" for row in rows):
            raise OperationalError("INSERT", {}, Exception("the database went away"))
        return numbered(rows)

    writes = HeldWrites(fail_with_evt_3)
    writer = GroupedWriter(writes, key="key", limit=3)
    first = threading.Thread(target=writer.store, args=({"key": "evt-0"},))
    first.start()
    assert writes.writing.wait(5)
    results: dict = {}
    later = threading.Thread(
        target=lambda: results.update(store_in_threads(writer, [f"evt-{n}" for n in range(1, 7)]))
    )
    later.start()
    gathered(writer, 6)
    writes.release.set()
    later.join(10), first.join(10)
    failed = [n + 1 for n, outcome in results.items() if isinstance(outcome, GroupFailed)]
    assert sorted(failed) == [1, 2, 3]  # evt-3's group: evt-1, evt-2 and evt-3
    assert [results[n - 1] for n in (4, 5, 6)] == [4, 5, 6]
    assert "the database went away" in str(results[0])
    assert writer.store({"key": "evt-9"}) == 9  # the writer goes on after a failure


def test_a_key_twice_in_one_group_is_written_once_and_the_second_learns_it_was_kept():
    writes = HeldWrites(numbered)
    writer = GroupedWriter(writes, key="key")
    first = threading.Thread(target=writer.store, args=({"key": "evt-0"},))
    first.start()
    assert writes.writing.wait(5)
    results: dict = {}
    later = threading.Thread(
        target=lambda: results.update(store_in_threads(writer, ["evt-5", "evt-6", "evt-5"]))
    )
    later.start()
    gathered(writer, 3)
    writes.release.set()
    later.join(10), first.join(10)
    assert writes.groups[1] == ["evt-5", "evt-6"]
    assert results == {0: 5, 1: 6, 2: None}


def stored_ids() -> Counter:
    db.session.expire_all()
    return Counter(db.session.scalars(select(StripeEvent.event_id)))


def test_concurrent_deliveries_are_each_stored_once_and_answered_for_their_own_event(app):
    """Through the view, on the real database: 40 events and 20 second deliveries at once."""
    bodies = [event("account.updated") for _ in range(40)]
    deliveries = bodies + bodies[::2]
    answers: list = [None] * len(deliveries)

    def deliver(position: int) -> None:
        with app.app_context():  # the test client reads the session after each request
            answers[position] = post_event(app.test_client(), deliveries[position])

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(len(deliveries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [answer.status_code for answer in answers] == [200] * len(deliveries)
    assert [answer.json["received"] for answer in answers] == [b["id"] for b in deliveries]
    firsts = Counter(answer.json["received"] for answer in answers if not answer.json["duplicate"])
    assert firsts == Counter(body["id"] for body in bodies)  # one new row per event
    assert stored_ids() == Counter(body["id"] for body in bodies)


def test_a_group_the_database_rejects_keeps_none_of_its_rows(app):
    """A row that breaks a constraint makes the whole statement fail: the group's other
    events are not kept either, and each of its requests gets the error (to answer 5xx)."""
    writer = inbox._grouped_writer()
    writes = HeldWrites(writer.write)
    writer.write = writes
    good = [f"evt_grouped_{n}" for n in range(3)]

    def store(values: dict) -> int | None:
        with app.app_context():
            row = event("account.updated", event_id=values["key"])
            values = {
                "event_id": row["id"] if values["key"] != "bad" else None,  # NOT NULL
                "type": row["type"],
                "account": row["account"],
                "livemode": False,
                "created": inbox.utcnow(),
                "payload": "{}",
                "received_at": inbox.utcnow(),
                "state": "received",
                "next_attempt_at": None,
                "processed_at": None,
                "key": values["key"],
            }
            return writer.store(values)

    writer.key = "key"
    first = threading.Thread(target=store, args=({"key": "evt_grouped_first"},))
    first.start()
    assert writes.writing.wait(5)
    results: dict = {}
    later = threading.Thread(
        target=lambda: results.update(store_in_threads(writer, [*good, "bad"], store=store))
    )
    later.start()
    gathered(writer, 4)
    writes.release.set()
    later.join(10), first.join(10)
    assert all(isinstance(outcome, GroupFailed) for outcome in results.values()), results
    assert stored_ids() == Counter(["evt_grouped_first"])


def test_a_webhook_whose_group_failed_answers_503_and_stripe_delivers_it_again(
    app, client, monkeypatch
):
    def database_away(rows):
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    body = event("account.updated")
    with monkeypatch.context() as patched:
        patched.setattr(inbox, "_insert", database_away)
        refused = post_event(client, body)
    assert refused.status_code == 503
    assert "try again" in refused.json["error"]
    assert stored_ids() == Counter()
    again = post_event(client, body)  # Stripe's next delivery
    assert again.status_code == 200 and again.json["duplicate"] is False
    assert stored_ids() == Counter([body["id"]])


@pytest.mark.parametrize("rows", [1, 2, 100])
@pytest.mark.parametrize("placeholder", ["%s", "?"])
def test_one_statement_per_group_size_is_made_once(rows, placeholder):
    statement = inbox._insert_events_statement(rows, placeholder)
    assert inbox._insert_events_statement(rows, placeholder) is statement
    assert statement.count(placeholder) == rows * len(inbox.EVENT_COLUMNS)
