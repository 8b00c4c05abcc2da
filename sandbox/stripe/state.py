"""The stand-in's memory: test accounts, their connections to the platform, OAuth codes,
every account's objects (events included) and webhook outcomes, under one lock.

Changes happen inside ``with state.changing():``, which saves the state file when it ends,
so a demo that restarts keeps its accounts, connections and events. OAuth codes live for
minutes and are not saved.
"""

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sandbox.common.files import write_atomically
from sandbox.stripe.settings import StripeStandinSettings
from sandbox.stripe.store import ObjectStore, new_id


@dataclass
class Connection:
    """An account's grant to the platform, made by an OAuth code exchange."""

    account_id: str
    scope: str
    access_token: str
    refresh_token: str
    publishable_key: str
    connected_at: int

    @classmethod
    def grant(cls, account_id: str, scope: str) -> "Connection":
        return cls(
            account_id=account_id,
            scope=scope,
            access_token=new_id("sk_test_", 32),
            refresh_token=new_id("rt_", 32),
            publishable_key=new_id("pk_test_", 32),
            connected_at=int(time.time()),
        )


@dataclass
class AuthorizationCode:
    code: str
    account_id: str
    client_id: str
    scope: str
    redirect_uri: str
    issued_at: float
    used: bool = False


class StripeState:
    def __init__(self, settings: StripeStandinSettings):
        self.settings = settings
        self.lock = threading.RLock()
        self._state_file = Path(settings.state_file) if settings.state_file else None
        self._clear()
        if self._state_file and self._state_file.exists():
            self._load()

    def _clear(self) -> None:
        self._accounts: dict[str, dict[str, Any]] = {}
        self._connections: dict[str, Connection] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self.objects = ObjectStore()
        # Per event: True once delivered, False after a failed attempt, absent if never sent.
        self._delivery_success: dict[str, bool] = {}

    def reset(self) -> None:
        with self.changing():
            self._clear()

    @contextmanager
    def changing(self) -> Iterator[None]:
        with self.lock:
            yield
            self._save()

    # -- accounts ---------------------------------------------------------------------------

    def add_account(self, account: dict[str, Any]) -> None:
        with self.changing():
            self._accounts[account["id"]] = account

    def replace_account(self, account: dict[str, Any]) -> None:
        with self.changing():
            self._accounts[account["id"]] = account

    def account(self, account_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self._accounts.get(account_id)
            return json.loads(json.dumps(found)) if found else None

    def accounts(self) -> list[dict[str, Any]]:
        with self.lock:
            return json.loads(json.dumps(list(self._accounts.values())))

    # -- connections ------------------------------------------------------------------------

    def connect(self, account_id: str, scope: str) -> Connection:
        with self.changing():
            connection = Connection.grant(account_id, scope)
            self._connections[account_id] = connection
            return connection

    def disconnect(self, account_id: str) -> Connection | None:
        with self.changing():
            return self._connections.pop(account_id, None)

    def connection(self, account_id: str) -> Connection | None:
        with self.lock:
            return self._connections.get(account_id)

    def is_connected(self, account_id: str) -> bool:
        return self.connection(account_id) is not None

    def connection_for_refresh_token(self, refresh_token: str) -> Connection | None:
        with self.lock:
            for connection in self._connections.values():
                if connection.refresh_token == refresh_token:
                    return connection
        return None

    def refresh(self, connection: Connection) -> Connection:
        """A new access token for the same grant, as a refresh_token exchange gives."""
        with self.changing():
            connection.access_token = new_id("sk_test_", 32)
            return connection

    # -- OAuth codes ------------------------------------------------------------------------

    def issue_code(
        self, account_id: str, client_id: str, scope: str, redirect_uri: str
    ) -> AuthorizationCode:
        code = AuthorizationCode(
            code=new_id("ac_", 32),
            account_id=account_id,
            client_id=client_id,
            scope=scope,
            redirect_uri=redirect_uri,
            issued_at=time.time(),
        )
        with self.lock:
            self._codes[code.code] = code
        return code

    def code(self, code: str) -> AuthorizationCode | None:
        with self.lock:
            return self._codes.get(code)

    # -- objects of every type, per account (events, and Checkout's objects in time) ------

    def put_object(self, account: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        with self.changing():
            return self.objects.put(account, obj)

    def get_object(self, account: str | None, object_id: str) -> dict[str, Any] | None:
        with self.lock:
            return self.objects.get(account, object_id)

    def update_object(
        self, account: str | None, object_id: str, change: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any] | None:
        with self.changing():
            return self.objects.update(account, object_id, change)

    def objects_of(self, account: str | None, object_type: str) -> list[dict[str, Any]]:
        """Oldest first."""
        with self.lock:
            return self.objects.of_type(account, object_type)

    def objects_everywhere(self, object_type: str) -> list[tuple[str | None, dict[str, Any]]]:
        with self.lock:
            return self.objects.everywhere(object_type)

    def find_object(self, object_id: str) -> tuple[str | None, dict[str, Any]] | None:
        with self.lock:
            return self.objects.find(object_id)

    # -- webhook outcomes -------------------------------------------------------------------

    def record_delivery(self, event_id: str, success: bool) -> None:
        with self.changing():
            if not self._delivery_success.get(event_id):
                self._delivery_success[event_id] = success

    def delivery_success(self, event_id: str) -> bool | None:
        with self.lock:
            return self._delivery_success.get(event_id)

    # -- persistence ------------------------------------------------------------------------

    def _save(self) -> None:
        if not self._state_file:
            return
        data = {
            "accounts": list(self._accounts.values()),
            "connections": [asdict(c) for c in self._connections.values()],
            "objects": self.objects.dump(),
            "delivery_success": self._delivery_success,
        }
        write_atomically(self._state_file, json.dumps(data).encode())

    def _load(self) -> None:
        data = json.loads(self._state_file.read_text(encoding="utf-8"))
        self._accounts = {a["id"]: a for a in data.get("accounts", [])}
        self._connections = {c["account_id"]: Connection(**c) for c in data.get("connections", [])}
        self.objects.load(data.get("objects", {}))
        self._delivery_success = dict(data.get("delivery_success", {}))
