"""gunicorn's access log, with the secrets in addresses hidden (``--logger-class``)."""

from gunicorn.glogging import Logger

from vcpay.redaction import mask_url


class MaskedAccessLogger(Logger):
    """Every value a log format can name (request line, path, query, Referer, Location,
    any header or environ variable) is masked, so no format can bring a token back."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            name: mask_url(value) if isinstance(value, str) else value
            for name, value in atoms.items()
        }
