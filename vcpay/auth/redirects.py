"""Post-sign-in redirects that can only lead back into vcpay."""

from urllib.parse import urlsplit


def is_safe_next(target: str | None) -> bool:
    """A same-site path: no scheme, no host, no protocol-relative or backslash tricks."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if any(ch in target for ch in "\\\r\n\t") or any(ord(ch) < 32 for ch in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc
