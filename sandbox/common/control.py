"""A stand-in's ``/_sandbox`` controls over HTTP, for tests and benchmarks alike.

``call`` sends one control request and gives back its JSON, failing loudly when the stand-in
refuses; ``answer`` gives back the response itself, for a test that looks at a refusal.
"""

from typing import Any

import requests

PREFIX = "/_sandbox"


class ControlRefused(AssertionError):
    """The stand-in refused a control request: in a test, a failed setup step."""

    def __init__(self, response: requests.Response):
        request = response.request
        super().__init__(
            f"{request.method} {request.url} answered {response.status_code}: {response.text}"
        )
        self.response = response


class ControlClient:
    def __init__(self, base: str, timeout: float = 10.0):
        self.base = base.rstrip("/")
        self.timeout = timeout

    def url_for(self, path: str) -> str:
        """``faults`` and ``/faults`` both name ``<base>/_sandbox/faults``."""
        return f"{self.base}{PREFIX}/{path.lstrip('/')}"

    def answer(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        with requests.Session() as session:
            session.trust_env = False  # the stand-ins are local: no proxy from the environment
            return session.request(
                method, self.url_for(path), timeout=kwargs.pop("timeout", self.timeout), **kwargs
            )

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """The JSON of a 2xx answer (None when empty); anything else raises."""
        response = self.answer(method, path, json=body, params=params or None)
        if not 200 <= response.status_code < 300:
            raise ControlRefused(response)
        return response.json() if response.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, **params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.call("POST", path, body if body is not None else {})

    def put(self, path: str, body: Any = None) -> Any:
        return self.call("PUT", path, body if body is not None else {})

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def reset(self) -> None:
        self.post("reset")

    def calls(self) -> list[dict[str, Any]]:
        """The API calls the stand-in received (never its control calls)."""
        return self.get("calls")

    def clear_calls(self) -> None:
        self.delete("calls")

    def fault(self, **spec: Any) -> str:
        """Inject an API fault (the stand-in's own spec names); its id."""
        return self.post("faults", spec)["id"]

    def faults(self) -> list[dict[str, Any]]:
        return self.get("faults")

    def clear_faults(self) -> None:
        self.delete("faults")
