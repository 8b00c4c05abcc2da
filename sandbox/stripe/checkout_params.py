"""Reading a Checkout Session create call as Stripe reads it: the parameters it takes and
refuses (unknown ones, by the TypedDicts stripe-python generates from Stripe's spec), each
refusal with Stripe's message, code and ``param``. Line items are in ``checkout_line_items``.
"""

from typing import Any

from stripe.params.checkout import SessionCreateParams

from sandbox.stripe.cards import EMAIL
from sandbox.stripe.errors import (
    InvalidParameter,
    invalid_integer,
    missing,
)
from sandbox.stripe.params import refuse_unknown

# From the session's creation, to the second, with no leeway, as Stripe measures it: a client
# that asks for exactly now + 30 minutes is refused if a second passes on the way.
MIN_LIFETIME = 30 * 60
MAX_LIFETIME = 24 * 60 * 60
MODES = ("payment", "setup", "subscription")
# The languages Checkout speaks (docs.stripe.com/js/appendix/supported_locales); no Serbian.
LOCALES = (
    "auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil",
    "fr", "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl",
    "pt", "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW",
)  # fmt: skip
UI_MODES = ("hosted_page", "embedded_page", "elements", "form")
PAYMENT_INTENT_FIELDS = (
    "application_fee_amount",
    "description",
    "metadata",
    "receipt_email",
    "statement_descriptor",
    "statement_descriptor_suffix",
    "transfer_group",
)
# Taken in setup mode only (``checkout_setup``), where they are how a card gets saved.
SETUP_MODE_ONLY = ("customer", "customer_creation", "currency", "setup_intent_data")
# Known to Stripe, and harmless to take without acting on them.
STORED_AS_GIVEN = ("locale", "submit_type", "billing_address_collection")
SUPPORTED = frozenset(
    {
        "mode", "line_items", "payment_intent_data", "metadata", "client_reference_id",
        "success_url", "cancel_url", "expires_at", "customer_email", "ui_mode",
        "allowed_payment_method_types", "expand", *STORED_AS_GIVEN, *SETUP_MODE_ONLY,
    }
)  # fmt: skip


def integer(value: Any, param: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise invalid_integer(value, param) from None


def text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidParameter(f"Invalid string: {value}", param=param)
    return value


def string_map(value: Any, param: str) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidParameter("Invalid hash", param=param)
    if len(value) > 50:
        raise InvalidParameter("You can specify up to 50 metadata keys.", param=param)
    return {k: v for k, v in value.items() if v != ""}


def url(value: Any, param: str) -> str:
    value = text(value, param)
    if not value.startswith(("http://", "https://")):
        raise InvalidParameter("Not a valid URL", param=param, code="url_invalid")
    return value


def read_expires_at(params: dict[str, Any], created: int) -> int:
    if "expires_at" not in params:
        return created + MAX_LIFETIME
    expires_at = integer(params["expires_at"], "expires_at")
    if expires_at < created + MIN_LIFETIME:
        raise InvalidParameter(
            "The `expires_at` timestamp must be at least 30 minutes after the Checkout "
            "Session is created.",
            param="expires_at",
        )
    if expires_at > created + MAX_LIFETIME:
        raise InvalidParameter(
            "The `expires_at` timestamp must be at most 24 hours after the Checkout Session "
            "is created.",
            param="expires_at",
        )
    return expires_at


def read_mode(params: dict[str, Any]) -> None:
    mode = params.get("mode")
    if mode is None:
        raise missing("mode")
    if mode not in MODES:
        raise InvalidParameter(f"Invalid mode: must be one of {', '.join(MODES)}", param="mode")
    if mode not in ("payment", "setup"):
        raise InvalidParameter(
            f"The Stripe stand-in supports Checkout in payment and setup modes, not {mode}.",
            param="mode",
        )
    if mode == "payment":
        for name in SETUP_MODE_ONLY:
            if name in params:
                raise InvalidParameter(
                    f"The Stripe stand-in takes {name} in setup mode only.", param=name
                )


def read_locale(params: dict[str, Any]) -> None:
    """Stripe refuses a language Checkout does not speak (Serbian among them), and stores the
    one it does as given."""
    locale = params.get("locale")
    if locale is not None and locale not in LOCALES:
        raise InvalidParameter(
            f"Invalid locale: must be one of {', '.join(LOCALES)}", param="locale"
        )


def read_ui_mode(params: dict[str, Any]) -> str:
    ui_mode = params.get("ui_mode", "hosted_page")
    if ui_mode not in UI_MODES:
        raise InvalidParameter(
            f"Invalid ui_mode: must be one of {', '.join(UI_MODES)}", param="ui_mode"
        )
    if ui_mode != "hosted_page":
        raise InvalidParameter(
            f"The Stripe stand-in supports only hosted Checkout (ui_mode=hosted_page), not "
            f"{ui_mode}: it has no Stripe.js.",
            param="ui_mode",
        )
    return ui_mode


def read_payment_intent_data(params: dict[str, Any], total: int) -> dict[str, Any]:
    given = params.get("payment_intent_data") or {}
    if not isinstance(given, dict):
        raise InvalidParameter("Invalid hash", param="payment_intent_data")
    unsupported = sorted(set(given) - set(PAYMENT_INTENT_FIELDS))
    if unsupported:
        raise InvalidParameter(
            f"The Stripe stand-in does not support payment_intent_data[{unsupported[0]}].",
            param=f"payment_intent_data[{unsupported[0]}]",
        )
    data: dict[str, Any] = {
        name: text(given[name], f"payment_intent_data[{name}]")
        for name in PAYMENT_INTENT_FIELDS
        if name in given and name not in ("metadata", "application_fee_amount")
    }
    data["metadata"] = string_map(given.get("metadata"), "payment_intent_data[metadata]")
    if "application_fee_amount" in given:
        param = "payment_intent_data[application_fee_amount]"
        fee = integer(given["application_fee_amount"], param)
        if not 0 <= fee <= total:
            raise InvalidParameter(
                "The application fee must be between 0 and the amount of the payment.",
                param=param,
            )
        data["application_fee_amount"] = fee
    email = data.get("receipt_email")
    if email is not None and not EMAIL.match(email):
        raise InvalidParameter(
            f"Invalid email address: {email}",
            param="payment_intent_data[receipt_email]",
            code="email_invalid",
        )
    return data


def read_customer_email(params: dict[str, Any]) -> str | None:
    email = params.get("customer_email")
    if email is None:
        return None
    if not EMAIL.match(text(email, "customer_email")):
        raise InvalidParameter(
            f"Invalid email address: {email}", param="customer_email", code="email_invalid"
        )
    return email


def refuse_unsupported(params: dict[str, Any]) -> None:
    refuse_unknown(params, SessionCreateParams)
    for name in params:
        if name not in SUPPORTED:
            raise InvalidParameter(
                f"The Stripe stand-in does not support {name} on Checkout Sessions yet.",
                param=name,
            )
    if params.get("allowed_payment_method_types") not in (None, ["card"]):
        raise InvalidParameter(
            "The Stripe stand-in takes only cards: allowed_payment_method_types=[card].",
            param="allowed_payment_method_types",
        )


def client_reference(params: dict[str, Any]) -> str | None:
    reference = params.get("client_reference_id")
    if reference is None:
        return None
    if len(text(reference, "client_reference_id")) > 200:
        raise InvalidParameter(
            "client_reference_id must be at most 200 characters.", param="client_reference_id"
        )
    return reference
