"""gunicorn's access log, with the secrets in addresses hidden (``--logger-class``)."""

import os

from gunicorn.glogging import Logger

from vcpay.redaction import mask_url

# What a JSON access record holds: no Referer or User-Agent (free text a client writes), no
# client address (the proxy's, or a patient's), and the path and query masked.
JSON_ATOMS = {
    "method": "m",
    "path": "U",
    "query": "q",
    "status": "s",
    "bytes": "B",
    "duration_ms": "M",
    "request_id": "{x-request-id}o",
}

NUMBERS = ("status", "bytes", "duration_ms")


def _wants_json() -> bool:
    return os.environ.get("VCPAY_LOG_FORMAT", "").strip().lower() == "json"


def _number(value) -> int | None:
    """gunicorn's atoms are text ("-" for none): numbers are numbers in JSON."""
    try:
        return int(str(value).split()[0])
    except (ValueError, IndexError):
        return None


class MaskedAccessLogger(Logger):
    """Every value a log format can name (request line, path, query, Referer, Location,
    any header or environ variable) is masked, so no format can bring a token back. With
    ``VCPAY_LOG_FORMAT=json`` its lines (and gunicorn's own) are JSON objects instead."""

    def setup(self, cfg):
        super().setup(cfg)
        # Read here, not at import: gunicorn's master imports this module before it forks
        # workers, and a gevent worker wants as little imported before it as can be.
        self.log_format = "json" if _wants_json() else "text"
        if self.log_format == "json":
            from vcpay.observability.logs import dress

            for log in (self.error_log, self.access_log):
                for handler in log.handlers:
                    dress(handler, "json")

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            name: mask_url(value) if isinstance(value, str) else value
            for name, value in atoms.items()
        }

    def access(self, resp, req, environ, request_time):
        if self.log_format != "json":
            return super().access(resp, req, environ, request_time)
        if not self.access_log_enabled:
            return None
        atoms = self.atoms(resp, req, environ, request_time)
        fields = {field: atoms.get(atom) for field, atom in JSON_ATOMS.items()}
        for field in NUMBERS:
            fields[field] = _number(fields[field])
        self.access_log.info("%(method)s %(path)s %(status)s", fields, extra=fields)
        return None
