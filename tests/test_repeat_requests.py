"""A second request for the same amount and description while the first is still open in the
call: the clinician confirms it before the patient is asked twice.

The real ``stripe`` library talks HTTP to the stand-in; nothing is made at Stripe until the
clinician confirms.
"""

import re

from tests.conftest import csrf_token
from tests.payment_steps import (
    ask,
    ask_for_json,
    clinician_fixture,  # noqa: F401 - a fixture
    gp_fixture,  # noqa: F401 - a fixture
    join,
    kinds,
    pay_and_process,
    request_form,
    requests_made,
    sent_back,
    start_call,
)
from tests.stripe_standin import process_received
from vcpay.payments import requesting
from vcpay.payments.models import PaymentState

PROMPT = (
    "A request for A$85.00 &#39;Consultation&#39; is still open in this call. Request it again?"
)


def confirm_box(page: str) -> str | None:
    """The value of the ticked box that confirms a second payment, if the page has one."""
    box = re.search(r'<input type="checkbox" id="confirm_repeat" name="confirm_repeat" '
                    r'value="([^"]+)" checked', page)  # fmt: skip
    return box.group(1) if box else None


def form_in(page: str) -> dict:
    """The form as the call screen gives it back after a refusal: key, token, the ticked box."""
    return {
        "request_key": re.search(r'name="request_key" type="hidden" value="([^"]+)"', page)[1],
        "csrf_token": re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1],
        "confirm_repeat": confirm_box(page),
    }


def test_the_same_amount_and_description_asks_first_then_makes_a_second_request(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    join(app, call)
    assert ask(clinician, call).status_code == 303
    [first] = requests_made()

    refused = ask(clinician, call, description="consultation ")  # case and spaces aside
    page = sent_back(clinician, call, refused)
    assert PROMPT in page
    assert confirm_box(page) == first.request_key
    assert 'value="85.00"' in page  # the form comes back as it was sent
    assert len(requests_made()) == 1
    assert len(stripe_control.sessions()) == 1  # nothing made at Stripe

    confirmed = ask(clinician, call, form=form_in(page))
    assert confirmed.status_code == 303
    assert [r.state for r in requests_made()] == [PaymentState.REQUESTED] * 2
    assert len(stripe_control.sessions()) == 2
    assert kinds(call).count("payment_requested") == 2


def test_an_unticked_box_is_asked_again(app, clinician, gp):
    call = start_call(clinician, gp)
    join(app, call)
    ask(clinician, call)
    page = sent_back(clinician, call, ask(clinician, call))
    unticked = {**form_in(page), "confirm_repeat": ""}
    again = ask(clinician, call, form=unticked)
    assert PROMPT in sent_back(clinician, call, again)
    assert len(requests_made()) == 1


def test_a_different_amount_or_description_is_asked_at_once(app, clinician, gp):
    call = start_call(clinician, gp)
    join(app, call)
    ask(clinician, call)
    assert ask(clinician, call, amount="85.50").status_code == 303
    assert ask(clinician, call, description="Consultation and report").status_code == 303
    assert len(requests_made()) == 3


def test_a_request_no_longer_open_is_no_reason_to_ask(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    join(app, call)
    ask(clinician, call)
    [paid] = requests_made()
    pay_and_process(webhooks, paid)
    webhooks.wait_for_webhooks()
    process_received()
    assert ask(clinician, call).status_code == 303  # the next visit's fee, say

    cancelled = requests_made()[-1]
    token = csrf_token(clinician, f"/calls/{call.id}")
    clinician.post(
        f"/calls/{call.id}/payment-requests/{cancelled.request_key}/cancel",
        data={"csrf_token": token},
    )
    assert ask(clinician, call).status_code == 303
    states = [r.state for r in requests_made()]
    assert states == [PaymentState.PAID, PaymentState.CANCELLED, PaymentState.REQUESTED]


def test_a_delayed_payment_still_settling_is_open_and_asks(app, clinician, gp, webhooks):
    call = start_call(clinician, gp)
    join(app, call)
    ask(clinician, call)
    [processing] = requests_made()
    webhooks.pay(processing.checkout_session_id, delayed=True)
    webhooks.wait_for_webhooks()
    process_received()
    assert requests_made()[0].state == PaymentState.PROCESSING
    assert PROMPT in sent_back(clinician, call, ask(clinician, call))


def test_the_same_request_in_another_call_is_asked_at_once(app, clinician, gp):
    call = start_call(clinician, gp)
    join(app, call)
    ask(clinician, call)
    other = start_call(clinician, gp, "Robin Other, 11:00")
    join(app, other, "Robin Other")
    assert ask(clinician, other).status_code == 303
    assert len(requests_made()) == 2


def test_a_double_click_is_still_one_request_and_no_question(app, clinician, gp, stripe_control):
    call = start_call(clinician, gp)
    join(app, call)
    form = request_form(clinician, call)
    first, second = ask(clinician, call, form=form), ask(clinician, call, form=form)
    assert first.status_code == second.status_code == 303
    assert len(requests_made()) == 1
    assert len(stripe_control.sessions()) == 1
    # The confirmed second request, double clicked, is two requests in all.
    page = sent_back(clinician, call, ask(clinician, call))
    confirmed = form_in(page)
    assert ask(clinician, call, form=confirmed).status_code == 303
    assert ask(clinician, call, form=confirmed).status_code == 303
    assert len(requests_made()) == 2
    assert len(stripe_control.sessions()) == 2


def test_a_json_client_gets_409_and_confirms_with_the_open_request(
    app, clinician, gp, stripe_control
):
    call = start_call(clinician, gp)
    join(app, call)
    assert ask_for_json(clinician, call, request_form(clinician, call)).status_code == 201
    [first] = requests_made()
    form = request_form(clinician, call)
    refused = ask_for_json(clinician, call, form)
    assert refused.status_code == 409
    assert refused.json == {
        "error": "A request for A$85.00 'Consultation' is still open in this call. "
        "Request it again?",
        "field": "confirm_repeat",
        "open_request": first.request_key,
    }
    assert len(stripe_control.sessions()) == 1
    confirmed = ask_for_json(clinician, call, {**form, "confirm_repeat": first.request_key})
    assert (confirmed.status_code, confirmed.json["repeated"]) == (201, False)
    assert len(requests_made()) == 2


def test_a_double_click_stored_between_the_two_checks_is_the_same_request(
    app, clinician, gp, stripe_control, monkeypatch
):
    """The second click's key look-up runs just before the first click commits, and its check
    for an open twin just after: it is the first click's request, not a repeat to confirm."""
    call = start_call(clinician, gp)
    join(app, call)
    form = request_form(clinician, call)
    assert ask_for_json(clinician, call, form).status_code == 201
    monkeypatch.setattr(requesting, "existing_request", lambda request_key: None)
    second = ask_for_json(clinician, call, form)
    assert (second.status_code, second.json["repeated"]) == (201, True)
    assert len(requests_made()) == 1
    assert len(stripe_control.sessions()) == 1
