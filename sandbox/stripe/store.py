"""Stripe objects kept per account, and the ids Stripe gives them.

Every object lives in the scope of one account (``None`` is the platform itself), as on
Stripe: an object requested with another ``Stripe-Account`` does not exist. Objects are plain
JSON dicts in the shape the API returns, so storing, listing and persisting need no per-type
code; new resource types only pick an id prefix.
"""

import copy
import secrets
import string
from collections.abc import Callable
from typing import Any

ALPHANUMERIC = string.ascii_letters + string.digits
PLATFORM = ""  # the scope key of the platform's own objects


def new_id(prefix: str, length: int = 24) -> str:
    """``acct_`` ids carry 16 characters, most others 24, as on Stripe."""
    return prefix + "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def scope_key(account: str | None) -> str:
    return account or PLATFORM


class ObjectStore:
    """Objects by account and id, in creation order. Not locked: ``StripeState`` is."""

    def __init__(self) -> None:
        self._scopes: dict[str, dict[str, dict[str, Any]]] = {}

    def put(self, account: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        """Add or replace an object; a replaced one keeps its place in the order."""
        self._scopes.setdefault(scope_key(account), {})[obj["id"]] = copy.deepcopy(obj)
        return copy.deepcopy(obj)

    def get(self, account: str | None, object_id: str) -> dict[str, Any] | None:
        found = self._scopes.get(scope_key(account), {}).get(object_id)
        return copy.deepcopy(found) if found is not None else None

    def update(
        self, account: str | None, object_id: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any] | None:
        found = self._scopes.get(scope_key(account), {}).get(object_id)
        if found is None:
            return None
        change(found)
        return copy.deepcopy(found)

    def find(self, object_id: str) -> tuple[str | None, dict[str, Any]] | None:
        """An object in whichever account holds it (for the control API only)."""
        for key, objects in self._scopes.items():
            if object_id in objects:
                return key or None, copy.deepcopy(objects[object_id])
        return None

    def of_type(self, account: str | None, object_type: str) -> list[dict[str, Any]]:
        """An account's objects of one ``object`` type, oldest first."""
        objects = self._scopes.get(scope_key(account), {}).values()
        return [copy.deepcopy(o) for o in objects if o.get("object") == object_type]

    def everywhere(self, object_type: str) -> list[tuple[str | None, dict[str, Any]]]:
        return [
            (key or None, copy.deepcopy(o))
            for key, objects in self._scopes.items()
            for o in objects.values()
            if o.get("object") == object_type
        ]

    def order_by_created(self, account: str | None) -> None:
        """Put an account's objects in the order of their ``created`` times (those without one
        first), as lists show them; objects made in order keep it. For objects written after
        the fact, dated in the past."""
        objects = self._scopes.get(scope_key(account), {})
        ordered = sorted(objects.values(), key=lambda o: o.get("created") or 0)
        self._scopes[scope_key(account)] = {o["id"]: o for o in ordered}

    def clear(self) -> None:
        self._scopes.clear()

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        return {key: list(objects.values()) for key, objects in self._scopes.items()}

    def load(self, data: dict[str, list[dict[str, Any]]]) -> None:
        self._scopes = {key: {o["id"]: o for o in objects} for key, objects in data.items()}
