"""Addresses as logs may show them: without the secrets some of them carry.

A guest link's token is the patient's key to a call, and a receipt link's signed token the
key to a receipt (the payer's email and card); Stripe's OAuth answer carries a single-use
``code`` and vcpay's signed ``state``; Checkout's return carries the session id; a password
reset link, the signed token that lets its holder choose the person's password.
"""

import re

HIDDEN = "[hidden]"
RECEIPT_TOKEN = re.compile(r"(/join/receipts/)[^/?#\s\"]+")
RESET_TOKEN = re.compile(r"(/reset-password/)[^/?#\s\"]+")
GUEST_TOKEN = re.compile(r"(/join/)(?!receipts/)[^/?#\s\"]+")
SECRET_QUERY_VALUE = re.compile(r"((?:^|[?&])(?:code|state|session_id)=)[^&#\s\"]*")


def mask_url(text: str) -> str:
    """``text`` (a path, a query, a request line, a Referer) with those secrets hidden."""
    text = RECEIPT_TOKEN.sub(rf"\g<1>{HIDDEN}", text)
    text = GUEST_TOKEN.sub(rf"\g<1>{HIDDEN}", text)
    text = RESET_TOKEN.sub(rf"\g<1>{HIDDEN}", text)
    return SECRET_QUERY_VALUE.sub(rf"\g<1>{HIDDEN}", text)
