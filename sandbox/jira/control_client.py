"""The Jira stand-in's ``/_sandbox`` controls, as tests and benchmarks drive it: customers and
requests, an agent's decisions, the clock and search lag, and the admin webhook."""

from typing import Any

from sandbox.common.control import ControlClient


class JiraControl(ControlClient):
    def customer(
        self, email: str = "manager@clinic.example", name: str = "Telehealth Manager"
    ) -> str:
        """A service-desk customer (found again if the email is known); their account id."""
        return self.post("customers", {"email": email, "displayName": name})["accountId"]

    def bulk(self, count: int, **options: Any) -> dict[str, Any]:
        """``count`` requests raised at once for one customer (``customer_email``...)."""
        return self.post("bulk", {"count": count, **options})

    def requests(self) -> list[dict[str, Any]]:
        """Every request, flat, in the order raised."""
        return self.get("requests")

    def request(self, key: str) -> dict[str, Any]:
        return self.get(f"requests/{key}")

    def decide(self, key: str, decision: str, comment: str | None = None) -> dict[str, Any]:
        """The agent answers the approval: ``approve`` or ``decline``."""
        return self.post(f"requests/{key}/decide", {"decision": decision, "comment": comment})

    def move(self, key: str, status: str) -> dict[str, Any]:
        """The agent moves the request by hand, whatever its approval says."""
        return self.post(f"requests/{key}/move", {"status": status})

    def shift_clock(self, offset_seconds: float) -> dict[str, Any]:
        """The stand-in's clock, this far from the real one."""
        return self.post("clock", {"offset_seconds": offset_seconds})

    def search_lag(self, seconds: float) -> None:
        """Changes reach search only after this long, as on Jira Cloud."""
        self.post("search-lag", {"seconds": seconds})

    def webhooks(self) -> dict[str, Any]:
        """The admin webhook's URL, whether it is signed, and every delivery attempt."""
        return self.get("webhooks")

    def send_webhooks_to(self, url: str, secret: str | None = None) -> dict[str, Any]:
        """Where the admin webhook goes, and its secret (none: unsigned); "" stops it."""
        return self.put("webhooks", {"url": url, "secret": secret or ""})

    def wait_for_webhooks(self, seconds: float = 5.0) -> bool:
        """Whether every queued delivery was made within ``seconds``."""
        return self.post("webhooks/wait", {"seconds": seconds})["idle"]
