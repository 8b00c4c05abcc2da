"""What can go wrong when vcpay asks Stripe, in vcpay's words.

``_calling`` translates the library's errors: ``StripeUnavailable`` (try again later) or
``StripeRefused`` (Stripe said no). Each carries a message naming the call, for the log, and
``words`` for people, in their language; the Stripe request id is kept for support.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import stripe
from flask_babel import lazy_gettext as _l
from stripe import oauth_error

log = logging.getLogger(__name__)


class StripeApiError(Exception):
    def __init__(self, message: str, request_id: str | None = None, words=None):
        super().__init__(message)
        self.request_id = request_id
        # What went wrong, for the person who asked, translated when shown.
        self.words = message if words is None else words


class StripeUnavailable(StripeApiError):
    """Stripe could not be reached, was too slow, or failed: the same call may work later."""


class IdempotencyKeyInUse(StripeApiError):
    """Stripe is answering, or has answered, another request made with the same idempotency
    key (409 while it runs; 400 if its parameters differ): a double click's twin."""


class StripeRefused(StripeApiError):
    """Stripe refused the call: retrying it unchanged will not help."""


class RefundTooLarge(StripeRefused):
    """Stripe refused a refund of more than the charge has left unrefunded; ``remaining`` is
    what it has left (0: refunded in full), when the adapter could read it."""

    def __init__(self, message: str, request_id=None, remaining: int | None = None, words=None):
        super().__init__(message, request_id, words)
        self.remaining = remaining


# Stripe's codes for a refund of more than the charge has left.
REFUND_TOO_LARGE_CODES = ("amount_too_large", "charge_already_refunded")


class AuthorisationCodeRejected(StripeRefused):
    """The code Stripe sent back was unknown, expired or already used."""


class AccountNotConnected(StripeRefused):
    """The account is not (or no longer) connected to vcpay's platform."""


class WebhookSignatureInvalid(Exception):
    """A webhook whose signature is missing, wrong or too old: it did not come from Stripe."""


def _request_id(error: stripe.StripeError) -> str | None:
    return getattr(error, "request_id", None)


NOT_CONNECTED = _l("Stripe says this account is not connected to vcpay.")
SAME_KEY = _l("Stripe is still answering an earlier click; please try again in a moment.")


def _stripe_said(error):
    """Stripe's own explanation, as Stripe wrote it."""
    return _l("Stripe said: %(reason)s", reason=error.user_message or str(error))


def _oauth_refusal(error: oauth_error.OAuthError, action: str) -> StripeRefused:
    if isinstance(error, oauth_error.InvalidGrantError):
        return AuthorisationCodeRejected(
            "Stripe did not accept the authorisation: it has expired or was already used.",
            _request_id(error),
            words=_l(
                "Stripe did not accept the authorisation: it has expired or was already used."
            ),
        )
    if isinstance(error, oauth_error.InvalidClientError):
        return AccountNotConnected(
            f"Stripe says this account is not connected to vcpay ({action}).",
            _request_id(error),
            words=NOT_CONNECTED,
        )
    return StripeRefused(
        f"Stripe refused to {action}: {error.user_message or error}",
        _request_id(error),
        words=_stripe_said(error),
    )


@contextmanager
def calling_stripe(action: str) -> Iterator[None]:
    """Translate the library's errors; the library has already retried what it may."""
    try:
        yield
    except oauth_error.OAuthError as error:
        raise _oauth_refusal(error, action) from None
    except stripe.APIConnectionError as error:
        raise StripeUnavailable(
            f"Stripe could not be reached to {action}.",
            _request_id(error),
            words=_l("Stripe could not be reached."),
        ) from None
    except stripe.RateLimitError as error:
        raise StripeUnavailable(
            f"Stripe is busy and asked vcpay to slow down while trying to {action}.",
            _request_id(error),
            words=_l("Stripe is busy; please try again in a moment."),
        ) from None
    except stripe.AuthenticationError as error:
        log.error("Stripe rejected vcpay's secret key (request %s)", _request_id(error))
        raise StripeRefused(
            "Stripe rejected vcpay's platform key; an administrator must check the Stripe "
            "settings.",
            _request_id(error),
            words=_l(
                "Stripe rejected vcpay's platform key; an administrator must check the Stripe "
                "settings."
            ),
        ) from None
    except stripe.PermissionError as error:
        raise AccountNotConnected(
            f"Stripe says this account is not connected to vcpay ({action}).",
            _request_id(error),
            words=NOT_CONNECTED,
        ) from None
    except stripe.IdempotencyError as error:
        raise IdempotencyKeyInUse(
            f"Stripe has an earlier request with the same key to {action}.",
            _request_id(error),
            words=SAME_KEY,
        ) from None
    except stripe.InvalidRequestError as error:
        if error.code in REFUND_TOO_LARGE_CODES:
            raise RefundTooLarge(
                f"Stripe refused to {action}: {error.user_message or error}",
                _request_id(error),
                words=_stripe_said(error),
            ) from None
        raise StripeRefused(
            f"Stripe refused to {action}: {error.user_message or error}",
            _request_id(error),
            words=_stripe_said(error),
        ) from None
    except stripe.StripeError as error:
        status = getattr(error, "http_status", None)
        if status == 409:
            raise IdempotencyKeyInUse(
                f"Stripe is still answering an earlier request with the same key to {action}.",
                _request_id(error),
                words=SAME_KEY,
            ) from None
        raise StripeUnavailable(
            f"Stripe failed ({status or 'no answer'}) while vcpay tried to {action}.",
            _request_id(error),
            words=_l("Stripe failed (%(status)s).", status=status)
            if status
            else _l("Stripe did not answer."),
        ) from None
