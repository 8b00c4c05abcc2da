"""``expand``: ids in a response replaced by the objects they name, nested with dots
(``payment_intent.latest_charge``), as Stripe does. Lists take ``data.`` paths."""

from typing import Any

from sandbox.stripe.errors import InvalidParameter
from sandbox.stripe.runtime import StripeStandin

MAX_DEPTH = 4
# Per object type, the fields that can be expanded. A field whose object the stand-in does
# not keep (a customer, a payout's bank account) stays an id or null.
EXPANDABLE = {
    "checkout.session": ("payment_intent", "line_items", "customer", "invoice", "setup_intent"),
    "payment_intent": ("latest_charge", "payment_method", "customer", "review"),
    "charge": ("payment_intent", "balance_transaction", "customer", "application_fee",
               "payment_method_details", "refunds", "review"),
    "refund": ("charge", "payment_intent", "balance_transaction",
               "failure_balance_transaction"),
    "balance_transaction": ("source",),
    "customer": ("default_source", "test_clock"),
    "payment_method": ("customer",),
    "setup_intent": ("customer", "payment_method", "latest_attempt", "mandate",
                     "single_use_mandate", "application", "on_behalf_of"),
    "payout": ("balance_transaction", "destination", "failure_balance_transaction",
               "original_payout", "reversed_by"),
}  # fmt: skip


def expand_paths(params: dict[str, Any]) -> list[str]:
    paths = params.get("expand") or []
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise InvalidParameter("Invalid array", param="expand")
    for path in paths:
        if path.count(".") >= MAX_DEPTH:
            raise InvalidParameter(
                f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
                param="expand",
            )
    return paths


def expanded(
    running: StripeStandin,
    account: str | None,
    obj: dict[str, Any],
    params: dict[str, Any],
    extras: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``obj`` with the call's ``expand`` paths applied; ``extras`` supplies fields that are
    not stored on the object itself (a session's ``line_items``)."""
    for path in expand_paths(params):
        _expand(running, account, obj, path.split("."), path, extras or {})
    return obj


def _expand(
    running: StripeStandin,
    account: str | None,
    obj: dict[str, Any],
    names: list[str],
    path: str,
    extras: dict[str, Any],
) -> None:
    name, rest = names[0], names[1:]
    if obj.get("object") == "list" and name == "data":
        for item in obj["data"]:
            if rest:
                _expand(running, account, item, rest, path, extras)
        return
    if name not in EXPANDABLE.get(obj.get("object", ""), ()):
        raise InvalidParameter(f"This property cannot be expanded ({name}).", param="expand")
    value = obj.get(name, extras.get(name))
    if isinstance(value, str):
        found = running.state.get_object(account, value)
        value = found if found is not None else value
    obj[name] = value
    if rest and isinstance(value, dict):
        _expand(running, account, value, rest, path, {})
