"""The Stripe stand-in's ``/_sandbox`` controls, as tests and benchmarks drive it: test
accounts, the consent screen's answer without a browser, paying a Checkout Session, the
balance, payouts and refunds' outcomes, webhook delivery and its faults, and the events it
sent."""

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from sandbox.common.control import ControlClient, ControlRefused
from sandbox.stripe.settings import StripeStandinSettings

DEFAULTS = StripeStandinSettings()
VISA = "4242424242424242"


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def some_future_expiry() -> str:
    return f"12 / {(time.gmtime().tm_year + 3) % 100:02d}"


class StripeControl(ControlClient):
    # -- accounts -----------------------------------------------------------------------------

    def create_account(self, **fields: Any) -> dict[str, Any]:
        """A test account (``business_name``, ``email``, ``charges_enabled``...), not yet
        connected to any platform."""
        return self.post("accounts", fields)

    def account(self, **fields: Any) -> str:
        """A new test account's id."""
        return self.create_account(**fields)["id"]

    def accounts(self) -> dict[str, dict[str, Any]]:
        """Every test account by id, each saying whether it is ``connected``."""
        return {account["id"]: account for account in self.get("accounts")}

    def update_account(self, account_id: str, **fields: Any) -> dict[str, Any]:
        """Change a test account as its holder would in Stripe (``account.updated`` follows)."""
        return self.post(f"accounts/{account_id}", fields)

    def disconnect(self, account_id: str) -> None:
        """The holder disconnects the platform in their Dashboard."""
        self.post(f"accounts/{account_id}/disconnect")

    # -- Connect OAuth without a browser ------------------------------------------------------

    def authorize(self, **body: Any) -> str:
        """The consent screen's decision (``account``, ``new_account`` or ``decision:
        "deny"``) for an authorize request's parameters; where Stripe sends the browser."""
        return self.post("oauth/authorize", body)["location"]

    def consent(self, authorize_url: str, **choice: Any) -> dict[str, str]:
        """Answer Stripe's consent page for ``authorize_url`` as the person would; the query
        of the redirect back (``code`` and ``state``, or ``error``)."""
        query = query_of(authorize_url)
        body = {
            "client_id": query["client_id"],
            "redirect_uri": query["redirect_uri"],
            "state": query.get("state"),
            "scope": query.get("scope", "read_write"),
            **choice,
        }
        return query_of(self.authorize(**body))

    def connected_account(
        self, client_id: str = DEFAULTS.client_id, secret_key: str = DEFAULTS.secret_key, **fields
    ) -> str:
        """A test account that has granted the platform access (as after Go to Stripe, the
        code exchanged with the platform key); its id."""
        account = self.account(**fields)
        location = self.authorize(
            client_id=client_id, redirect_uri="http://127.0.0.1/cb", state="s", account=account
        )
        with requests.Session() as session:
            session.trust_env = False
            token = session.post(
                f"{self.base}/oauth/token",
                data={"grant_type": "authorization_code", "code": query_of(location)["code"]},
                headers={"Authorization": f"Bearer {secret_key}"},
                timeout=self.timeout,
            )
        if token.status_code != 200:
            raise ControlRefused(token)
        return account

    # -- Checkout -----------------------------------------------------------------------------

    def sessions(self, **filters: Any) -> list[dict[str, Any]]:
        """Every Checkout Session in every account, oldest first (``account=``, ``status=``)."""
        return self.get("checkout/sessions", **filters)

    def session_ids_by_request(self) -> dict[str, str]:
        """Session ids by the vcpay payment request each was made for (its metadata)."""
        return {
            s["metadata"]["payment_request"]: s["id"]
            for s in self.sessions()
            if (s.get("metadata") or {}).get("payment_request")
        }

    def pay(self, session_id: str, card: str = VISA, **details: Any) -> dict[str, Any]:
        """Pay as the pay page would: the outcome, the session and its PaymentIntent.
        ``authenticate`` answers 3-D Secure; ``delayed: true`` pays by bank debit."""
        body = {"card": card, "email": "pat@example.org", "name": "Pat Citizen", **details}
        return self.post(f"checkout/sessions/{session_id}/pay", body)

    def settle(self, session_id: str, outcome: str) -> dict[str, Any]:
        """The bank's answer to a delayed payment: ``succeeded`` or ``failed``."""
        return self.post(f"checkout/sessions/{session_id}/settle", {"outcome": outcome})

    def expire_now(self, session_id: str) -> dict[str, Any]:
        """What the clock does at ``expires_at``."""
        return self.post(f"checkout/sessions/{session_id}/expire-now")

    # -- balance, payouts, refunds' outcomes --------------------------------------------------

    def settle_balance(self, account_id: str) -> int:
        """Every pending balance transaction of the account becomes available now; how many."""
        return self.post(f"accounts/{account_id}/balance/settle")["made_available"]

    def pay_out(
        self, account_id: str, arrive: str = "now", fail: str | None = None
    ) -> list[dict[str, Any]]:
        """Pay out the available balance, one payout per currency: ``arrive="now"`` is paid
        at once, ``"later"`` stays in transit; ``fail`` (``account_closed``...) fails it."""
        body: dict[str, Any] = {"arrive": arrive}
        if fail is not None:
            body["fail"] = fail
        return self.post(f"accounts/{account_id}/payouts", body)

    def write_history(self, account_id: str, payments: list[dict[str, Any]]) -> dict[str, Any]:
        """Past payments (with their refunds) and weekly payouts on the account, dated in the
        past and sending no webhooks; once per payment ``key``. The ids of what each is."""
        return self.post(f"accounts/{account_id}/history", {"payments": payments})

    def payouts(self, **filters: Any) -> list[dict[str, Any]]:
        """Every payout in every account, oldest first (``account=``, ``status=``)."""
        return self.get("payouts", **filters)

    def payout_paid(self, payout_id: str) -> dict[str, Any]:
        return self.post(f"payouts/{payout_id}/paid")

    def payout_failed(self, payout_id: str, failure_code: str = "account_closed") -> dict:
        return self.post(f"payouts/{payout_id}/failed", {"failure_code": failure_code})

    def refunds_start(self, account_id: str, status: str) -> None:
        """New refunds on the account start ``pending`` (until decided) or ``succeeded``."""
        self.post(f"accounts/{account_id}/behaviour", {"refunds": status})

    def refund_succeeds(self, refund_id: str) -> dict[str, Any]:
        return self.post(f"refunds/{refund_id}/succeed")

    def refund_fails(self, refund_id: str, reason: str = "expired_or_canceled_card") -> dict:
        return self.post(f"refunds/{refund_id}/fail", {"reason": reason})

    def authenticate_payment(self, payment_intent_id: str, completed: bool = True) -> dict:
        """The customer's answer on the 3-D Secure page of a PaymentIntent that waits for it:
        the PaymentIntent and ``next_url`` (its ``return_url`` with the outcome)."""
        body = {"completed": completed}
        return self.post(f"payment_intents/{payment_intent_id}/authenticate", body)

    def card_behaves_as(self, payment_method_id: str, card: str) -> None:
        """From now on, charging the saved card does what test card ``card`` does."""
        self.post(f"payment_methods/{payment_method_id}/behaves-as", {"card": card})

    # -- events and webhooks ------------------------------------------------------------------

    def events(self, **filters: Any) -> list[dict[str, Any]]:
        """Every event in every account, oldest first (``account=``, ``type=``)."""
        return self.get("events", **filters)

    def redeliver(self, event_id: str) -> None:
        self.post(f"events/{event_id}/redeliver")

    def send_webhooks_to(self, url: str, secret: str = DEFAULTS.webhook_secret) -> None:
        self.post("webhooks", {"url": url, "secret": secret})

    def wait_for_webhooks(self, timeout: float = 10.0) -> None:
        """Return once every queued delivery has been made; fail after ``timeout``."""
        self.post("webhooks/wait", {"timeout": timeout})

    def webhook_fault(self, mode: str, **spec: Any) -> None:
        """Break the next deliveries: ``mode`` and its ``count``, ``seconds``..."""
        self.post("webhook-faults", {"mode": mode, **spec})

    def clear_webhook_faults(self) -> None:
        self.delete("webhook-faults")

    def release_held(self, order: str = "reverse") -> None:
        """Deliver the held events, in the order they were made or in reverse."""
        self.post("webhooks/release", {"order": order})

    def deliveries(self, event_id: str | None = None) -> list[dict[str, Any]]:
        return self.get("deliveries", **({"event": event_id} if event_id else {}))
