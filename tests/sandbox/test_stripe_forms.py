"""Stripe's bracketed form encoding, decoded as the stand-in reads every request."""

from urllib.parse import parse_qsl

import pytest
from stripe._encode import _api_encode

from sandbox.stripe.forms import FormError, decode_form, key_path
from sandbox.stripe.settings import StripeStandinSettings


def test_bracketed_keys_become_nested_objects_and_lists():
    body = (
        "mode=payment&line_items[0][price_data][currency]=aud"
        "&line_items[0][price_data][unit_amount]=5000&line_items[0][quantity]=1"
        "&line_items[1][price_data][product_data][name]=Consult"
        "&metadata[clinic_id]=9&metadata[0]=kept+as+a+key&types[]=a&types[]=b"
        "&created[gte]=10&expand[0]=data.account"
    )

    decoded = decode_form(parse_qsl(body))

    assert decoded == {
        "mode": "payment",
        "line_items": [
            {"price_data": {"currency": "aud", "unit_amount": "5000"}, "quantity": "1"},
            {"price_data": {"product_data": {"name": "Consult"}}},
        ],
        "metadata": {"clinic_id": "9", "0": "kept as a key"},
        "types": ["a", "b"],
        "created": {"gte": "10"},
        "expand": ["data.account"],
    }


def test_what_stripe_python_encodes_decodes_back():
    params = {
        "line_items": [{"price_data": {"unit_amount": 5000, "product_data": {"name": "Visit"}}}],
        "metadata": {"payment_request": "42"},
        "payment_intent_data": {"application_fee_amount": 100},
        "types": ["checkout.session.completed", "charge.refunded"],
        "livemode": False,
    }
    pairs = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in _api_encode(params)]

    assert decode_form(pairs) == {
        "line_items": [{"price_data": {"unit_amount": "5000", "product_data": {"name": "Visit"}}}],
        "metadata": {"payment_request": "42"},
        "payment_intent_data": {"application_fee_amount": "100"},
        "types": ["checkout.session.completed", "charge.refunded"],
        "livemode": "false",
    }


def test_key_paths():
    assert key_path("a[b][0][]") == ["a", "b", "0", ""]
    assert key_path("plain") == ["plain"]
    assert key_path("broken[") == ["broken["]


def test_a_key_both_a_value_and_a_hash_is_refused():
    with pytest.raises(FormError) as refused:
        decode_form([("metadata", "x"), ("metadata[a]", "1")])
    assert refused.value.param == "metadata[a]"


def test_settings_reject_unknown_keys_and_keep_tuples():
    settings = StripeStandinSettings.from_mapping(
        {"redirect_uris": ["http://a.example/cb"], "webhook_retry_seconds": [1, 2]}
    )

    assert settings.redirect_uris == ("http://a.example/cb",)
    assert settings.webhook_retry_seconds == (1.0, 2.0)
    with pytest.raises(TypeError, match="webhook_urls"):
        StripeStandinSettings.from_mapping({"webhook_urls": "x"})
    with pytest.raises(ValueError, match="secret key"):
        StripeStandinSettings(secret_key="pk_test_nope")
