"""Test accounts: Standard accounts shaped like Stripe's ``account`` object, and the changes
a clinic makes to its own (from the dashboard page or the control API), which Stripe
announces with ``account.updated``."""

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.stripe.events import ACCOUNT_UPDATED, previous_attributes
from sandbox.stripe.runtime import StripeStandin
from sandbox.stripe.settings import StripeStandinSettings
from sandbox.stripe.store import new_id

CURRENCIES = {"AU": "aud", "NZ": "nzd", "US": "usd", "GB": "gbp", "CA": "cad", "SG": "sgd"}
TIME_ZONES = {"AU": "Australia/Sydney", "NZ": "Pacific/Auckland", "GB": "Europe/London"}
EURO_COUNTRIES = frozenset({"AT", "BE", "DE", "ES", "FI", "FR", "IE", "IT", "NL", "PT"})
DEMO_ACCOUNTS = (
    ("Harbourside GP Clinic Pty Ltd", "accounts@harbourside-gp.example"),
    ("Harbourside Physiotherapy", "billing@harbourside-physio.example"),
)
PLATFORM_CREATED = 1735689600  # a fixed moment, so the platform's account never changes


class AccountFieldError(ValueError):
    pass


@dataclass(frozen=True)
class AccountFields:
    """What a tester may set on a test account; None leaves a field as it is."""

    business_name: str | None = None
    email: str | None = None
    country: str | None = None
    charges_enabled: bool | None = None
    payouts_enabled: bool | None = None
    details_submitted: bool | None = None
    currently_due: tuple[str, ...] | None = None
    disabled_reason: str | None = None  # "" clears it

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "AccountFields":
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise AccountFieldError(f"Unknown account fields: {', '.join(sorted(unknown))}.")
        for name in ("charges_enabled", "payouts_enabled", "details_submitted"):
            if body.get(name) is not None and not isinstance(body[name], bool):
                raise AccountFieldError(f"'{name}' must be true or false.")
        for name in ("business_name", "email", "country", "disabled_reason"):
            if body.get(name) is not None and not isinstance(body[name], str):
                raise AccountFieldError(f"'{name}' must be a string.")
        due = body.get("currently_due")
        if due is not None and (
            not isinstance(due, list) or not all(isinstance(d, str) for d in due)
        ):
            raise AccountFieldError("'currently_due' must be a list of strings.")
        return cls(**{**body, "currently_due": tuple(due) if due is not None else None})

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> "AccountFields":
        """The dashboard's edit form: every field is present; unticked boxes are absent."""
        due = [part.strip() for part in form.get("currently_due", "").split(",")]
        return cls(
            business_name=form.get("business_name", ""),
            email=form.get("email", ""),
            charges_enabled="charges_enabled" in form,
            payouts_enabled="payouts_enabled" in form,
            details_submitted="details_submitted" in form,
            currently_due=tuple(d for d in due if d),
            disabled_reason=form.get("disabled_reason", ""),
        )


def display_name(account: Mapping[str, Any]) -> str:
    dashboard_name = account["settings"]["dashboard"]["display_name"]
    return dashboard_name or account["business_profile"]["name"] or account["email"] or ""


def _requirements(currently_due: list[str], disabled_reason: str | None) -> dict[str, Any]:
    return {
        "alternatives": [],
        "current_deadline": None,
        "currently_due": list(currently_due),
        "disabled_reason": disabled_reason,
        "errors": [],
        "eventually_due": list(currently_due),
        "past_due": [],
        "pending_verification": [],
    }


def _settings(country: str, business_name: str | None) -> dict[str, Any]:
    return {
        "bacs_debit_payments": {"display_name": None, "service_user_number": None},
        "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
        "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
        "card_payments": {
            "decline_on": {"avs_failure": False, "cvc_failure": True},
            "statement_descriptor_prefix": None,
            "statement_descriptor_prefix_kana": None,
            "statement_descriptor_prefix_kanji": None,
        },
        "dashboard": {
            "display_name": business_name,
            "timezone": TIME_ZONES.get(country, "Etc/UTC"),
        },
        "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
        "payments": {
            "statement_descriptor": business_name.upper()[:22] if business_name else None,
            "statement_descriptor_kana": None,
            "statement_descriptor_kanji": None,
            "statement_descriptor_prefix_kana": None,
            "statement_descriptor_prefix_kanji": None,
        },
        "payouts": {
            "debit_negative_balances": True,
            "schedule": {"delay_days": 2, "interval": "daily"},
            "statement_descriptor": None,
        },
        "sepa_debit_payments": {},
    }


def _business_profile(name: str | None, email: str | None) -> dict[str, Any]:
    return {
        "annual_revenue": {"amount": None, "currency": None, "fiscal_year_end": None},
        "estimated_worker_count": None,
        "mcc": "8011",  # doctors and physicians
        "minority_owned_business_designation": None,
        "name": name,
        "product_description": None,
        "support_address": {
            "city": None,
            "country": None,
            "line1": None,
            "line2": None,
            "postal_code": None,
            "state": None,
        },
        "support_email": email,
        "support_phone": None,
        "support_url": None,
        "url": None,
    }


def default_currency(country: str) -> str:
    return "eur" if country in EURO_COUNTRIES else CURRENCIES.get(country, "usd")


def account_object(account_id: str, fields: AccountFields, created: int) -> dict[str, Any]:
    """A Standard account in Stripe's shape, as the ``account`` fixture has it."""
    country = (fields.country or "AU").upper()
    charges = True if fields.charges_enabled is None else fields.charges_enabled
    submitted = True if fields.details_submitted is None else fields.details_submitted
    return {
        "id": account_id,
        "object": "account",
        "business_profile": _business_profile(fields.business_name, fields.email),
        "business_type": "company",
        "capabilities": {
            "card_payments": "active" if charges else "inactive",
            "transfers": "active" if charges else "inactive",
        },
        "charges_enabled": charges,
        "controller": {"is_controller": False, "type": "account"},
        "country": country,
        "created": created,
        "default_currency": default_currency(country),
        "details_submitted": submitted,
        "email": fields.email,
        "external_accounts": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/accounts/{account_id}/external_accounts",
        },
        "future_requirements": _requirements([], None),
        "metadata": {},
        "payouts_enabled": True if fields.payouts_enabled is None else fields.payouts_enabled,
        "requirements": _requirements(
            list(fields.currently_due or ()), fields.disabled_reason or None
        ),
        "settings": _settings(country, fields.business_name),
        "tos_acceptance": {
            "date": created if submitted else None,
            "ip": "127.0.0.1" if submitted else None,
            "user_agent": None,
        },
        "type": "standard",
    }


def platform_account(settings: StripeStandinSettings) -> dict[str, Any]:
    """The platform's own account (``GET /v1/account`` without ``Stripe-Account``)."""
    digest = hashlib.sha256(settings.client_id.encode()).hexdigest()[:16]
    fields = AccountFields(business_name=settings.platform_name, email=None)
    return account_object(f"acct_{digest}", fields, PLATFORM_CREATED)


def validate_new_account(fields: AccountFields) -> None:
    if not (fields.business_name or "").strip():
        raise AccountFieldError("A business name is needed.")
    _validate_common(fields)


def _validate_common(fields: AccountFields) -> None:
    if fields.email and ("@" not in fields.email or fields.email.startswith("@")):
        raise AccountFieldError(f"'{fields.email}' is not an email address.")
    if fields.country is not None and not (len(fields.country) == 2 and fields.country.isalpha()):
        raise AccountFieldError("The country is a two-letter code, such as AU.")


def create_test_account(standin: StripeStandin, fields: AccountFields) -> dict[str, Any]:
    validate_new_account(fields)
    account = account_object(new_id("acct_", 16), fields, int(time.time()))
    standin.state.add_account(account)
    return account


def create_demo_accounts(standin: StripeStandin) -> None:
    """Two clinics to pick from on the consent page, when the state is empty."""
    if standin.state.accounts():
        return
    for name, email in DEMO_ACCOUNTS:
        create_test_account(standin, AccountFields(business_name=name, email=email))


def apply_fields(account: dict[str, Any], fields: AccountFields) -> None:
    if fields.business_name is not None:
        account["business_profile"]["name"] = fields.business_name.strip() or None
        account["settings"]["dashboard"]["display_name"] = fields.business_name.strip() or None
    if fields.email is not None:
        account["email"] = fields.email.strip() or None
        account["business_profile"]["support_email"] = account["email"]
    if fields.country is not None:
        account["country"] = fields.country.upper()
        account["default_currency"] = default_currency(account["country"])
    if fields.charges_enabled is not None:
        account["charges_enabled"] = fields.charges_enabled
        state = "active" if fields.charges_enabled else "inactive"
        account["capabilities"] = {"card_payments": state, "transfers": state}
    if fields.payouts_enabled is not None:
        account["payouts_enabled"] = fields.payouts_enabled
    if fields.details_submitted is not None:
        account["details_submitted"] = fields.details_submitted
    if fields.currently_due is not None:
        account["requirements"]["currently_due"] = list(fields.currently_due)
        account["requirements"]["eventually_due"] = list(fields.currently_due)
    if fields.disabled_reason is not None:
        account["requirements"]["disabled_reason"] = fields.disabled_reason.strip() or None


def change_account(
    standin: StripeStandin,
    account_id: str,
    change: Callable[[dict[str, Any]], None],
    request: dict[str, str | None] | None = None,
) -> dict[str, Any] | None:
    """Apply ``change`` (a function of the account dict) and announce it with
    ``account.updated`` if anything changed. None if there is no such account."""
    with standin.state.lock:
        before = standin.state.account(account_id)
        if before is None:
            return None
        after = standin.state.account(account_id)
        change(after)
        previous = previous_attributes(before, after)
        if previous:
            standin.state.replace_account(after)
            standin.events.emit(ACCOUNT_UPDATED, after, account_id, previous, request)
        return after


def update_test_account(
    standin: StripeStandin, account_id: str, fields: AccountFields
) -> dict[str, Any] | None:
    _validate_common(fields)
    return change_account(standin, account_id, lambda account: apply_fields(account, fields))


def merge_metadata(account: dict[str, Any], metadata: Any) -> None:
    """Stripe's metadata update: keys merge, an empty value unsets a key, and an empty
    ``metadata`` clears them all."""
    if metadata == "":
        account["metadata"] = {}
        return
    for key, value in metadata.items():
        if value == "":
            account["metadata"].pop(key, None)
        else:
            account["metadata"][key] = str(value)
