"""Posting a webhook to its endpoint, as the real services do: no proxy, no redirects."""

import urllib.error
import urllib.request
from typing import Any


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """Stripe and Jira treat a redirect as a failed delivery; they do not follow it."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# No proxies from the environment: endpoints are local, and a proxy would change the answer.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirects())


def post(
    url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int | None, str | None]:
    """The endpoint's status code, or None and why nothing answered."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with OPENER.open(request, timeout=timeout) as response:
            return response.status, None
    except urllib.error.HTTPError as refused:
        refused.close()
        return refused.code, None
    except (urllib.error.URLError, OSError, ValueError) as failed:  # ValueError: a bad URL
        reason = getattr(failed, "reason", failed)
        return None, f"{type(reason).__name__}: {reason}"
