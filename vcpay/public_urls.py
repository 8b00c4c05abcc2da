"""Links for email and Jira comments, which are written outside any browser request; and
whether an address is on this machine (where `make run` starts the stand-ins)."""

from urllib.parse import urlsplit

from flask import current_app


def public_url_for(endpoint: str, **values) -> str:
    """An absolute link to ``endpoint`` on the address people use (``VCPAY_PUBLIC_URL``)."""
    base = urlsplit(current_app.config["PUBLIC_URL"].rstrip("/"))
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme
    )
    return adapter.build(endpoint, values, force_external=True)


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_local(url: str) -> bool:
    return urlsplit(url).hostname in LOCAL_HOSTS
