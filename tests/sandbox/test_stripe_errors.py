"""Stripe's refusals as Stripe sends them: a ``code`` from its list with the ``doc_url`` of that
code's page, and for a missing object the ``param`` Stripe names it by; and a Checkout
Session's ``expires_at`` held to 30 minutes to 24 hours from its creation, with no leeway."""

import pytest
import stripe

from tests.sandbox.stripe_helpers import at_the_start_of_a_second, checkout_params, connect

DOCS = "https://stripe.com/docs/error-codes/"


@pytest.fixture
def clinic(stripe_api, stripe_sandbox) -> str:
    return connect(stripe_sandbox, stripe_api)


def refusal(call) -> stripe.StripeError:
    with pytest.raises(stripe.StripeError) as refused:
        call()
    return refused.value


def create_session(stripe_api, clinic, **overrides):
    return stripe_api.v1.checkout.sessions.create(
        checkout_params(**overrides), {"stripe_account": clinic}
    )


def test_a_code_comes_with_its_doc_url(stripe_api, clinic):
    unknown = refusal(lambda: create_session(stripe_api, clinic, colour="blue"))
    missing = refusal(lambda: create_session(stripe_api, clinic, success_url=None))
    not_a_number = refusal(
        lambda: stripe_api.v1.payment_intents.list({"limit": "ten"}, {"stripe_account": clinic})
    )
    both_cursors = refusal(
        lambda: stripe_api.v1.events.list(
            {"starting_after": "evt_1", "ending_before": "evt_2"}, {"stripe_account": clinic}
        )
    )

    for error, code, param in (
        (unknown, "parameter_unknown", "colour"),
        (missing, "parameter_missing", "success_url"),
        (not_a_number, "parameter_invalid_integer", "limit"),
        (both_cursors, "parameters_exclusive", "ending_before"),
    ):
        assert (error.code, error.json_body["error"]["param"]) == (code, param)
        assert error.json_body["error"]["doc_url"] == DOCS + code.replace("_", "-")
        assert error.json_body["error"]["type"] == "invalid_request_error"


def test_a_refusal_without_a_code_has_no_doc_url(stripe_api, clinic):
    error = refusal(lambda: create_session(stripe_api, clinic, metadata="not a hash"))

    assert error.code is None
    assert "doc_url" not in error.json_body["error"]


def test_a_missing_object_is_named_as_stripe_names_it(stripe_api, clinic):
    options = {"stripe_account": clinic}
    missing = {
        "session": refusal(
            lambda: stripe_api.v1.checkout.sessions.retrieve("cs_test_nothing", options=options)
        ),
        "intent": refusal(
            lambda: stripe_api.v1.payment_intents.retrieve("pi_nothing", options=options)
        ),
        "charge": refusal(lambda: stripe_api.v1.charges.retrieve("ch_nothing", options=options)),
        "refund": refusal(lambda: stripe_api.v1.refunds.retrieve("re_nothing", options=options)),
        "id": refusal(lambda: stripe_api.v1.events.retrieve("evt_nothing", options=options)),
        "payment_intent": refusal(
            lambda: stripe_api.v1.refunds.create({"payment_intent": "pi_nothing"}, options)
        ),
    }

    for param, error in missing.items():
        assert isinstance(error, stripe.InvalidRequestError), param
        assert error.http_status == 404, param
        assert (error.code, error.param) == ("resource_missing", param)
        assert error.json_body["error"]["doc_url"] == DOCS + "resource-missing"
    assert str(missing["intent"].user_message) == "No such payment_intent: 'pi_nothing'"
    assert str(missing["session"].user_message) == "No such checkout.session: 'cs_test_nothing'"


@pytest.mark.parametrize(
    ("lifetime", "accepted"),
    [
        (30 * 60 - 1, False),
        (30 * 60, True),
        (24 * 60 * 60, True),
        (24 * 60 * 60 + 1, False),
    ],
)
def test_expires_at_within_30_minutes_to_24_hours_without_leeway(
    stripe_api, clinic, lifetime, accepted
):
    now = at_the_start_of_a_second()
    try:
        session = create_session(stripe_api, clinic, expires_at=now + lifetime)
    except stripe.InvalidRequestError as refused:
        assert not accepted
        assert (refused.param, refused.http_status) == ("expires_at", 400)
        return
    assert accepted
    assert session.expires_at - session.created == lifetime
