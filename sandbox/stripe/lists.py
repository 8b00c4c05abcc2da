"""Stripe's list envelope and cursor paging (``limit``, ``starting_after``, ``ending_before``),
which stripe-python's auto-paging relies on. Items come newest first, as on Stripe."""

from collections.abc import Callable
from typing import Any

from sandbox.stripe.errors import InvalidParameter, ResourceMissing, exclusive, invalid_integer

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
PAGING_PARAMS = ("limit", "starting_after", "ending_before")


def whole_number(params: dict[str, Any], name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise invalid_integer(raw, name) from None


def page_limit(params: dict[str, Any]) -> int:
    limit = whole_number(params, "limit")
    if limit is None:
        return DEFAULT_LIMIT
    if limit < 1:
        raise InvalidParameter("This value must be greater than or equal to 1.", param="limit")
    if limit > MAX_LIMIT:
        raise InvalidParameter(
            f"This value must be less than or equal to {MAX_LIMIT}.", param="limit"
        )
    return limit


def list_object(
    newest_first: list[dict[str, Any]],
    params: dict[str, Any],
    url: str,
    describe: Callable[[dict[str, Any]], dict[str, Any]] = lambda item: item,
) -> dict[str, Any]:
    """One page of ``newest_first``; ``describe`` turns a stored item into its API form."""
    limit = page_limit(params)
    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise exclusive(("ending_before", "starting_after"), param="ending_before")
    if after:
        rest = newest_first[_position(newest_first, after, "starting_after") + 1 :]
        page, has_more = rest[:limit], len(rest) > limit
    elif before:
        newer = newest_first[: _position(newest_first, before, "ending_before")]
        page, has_more = newer[-limit:], len(newer) > limit
    else:
        page, has_more = newest_first[:limit], len(newest_first) > limit
    return {
        "object": "list",
        "data": [describe(item) for item in page],
        "has_more": has_more,
        "url": url,
    }


def _position(items: list[dict[str, Any]], object_id: str, param: str) -> int:
    for index, item in enumerate(items):
        if item["id"] == object_id:
            return index
    noun = items[0].get("object", "object") if items else "object"
    raise ResourceMissing(f"No such {noun}: '{object_id}'", param=param)
