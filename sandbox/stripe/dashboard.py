"""The test accounts' Dashboard, where "Edit in Stripe" lands: a clinic changes its account
(Stripe announces ``account.updated``), disconnects the platform (``account.application
.deauthorized``), refunds a payment as from Stripe's own Dashboard, and sees its payouts.
Plain forms that post and redirect back; no sign-in, as this is a sandbox."""

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from flask import Blueprint, flash, redirect, render_template, request, url_for

from sandbox.stripe import connect, refunds
from sandbox.stripe.accounts import (
    AccountFieldError,
    AccountFields,
    create_test_account,
    display_name,
    update_test_account,
)
from sandbox.stripe.errors import StripeError
from sandbox.stripe.money import formatted
from sandbox.stripe.runtime import standin

dashboard = Blueprint("dashboard", __name__)

EVENTS_SHOWN = 20
PAYMENTS_SHOWN = 20


def readable(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def account_rows() -> list[dict]:
    state = standin().state
    return [
        {
            "id": a["id"],
            "name": display_name(a),
            "email": a["email"],
            "country": a["country"],
            "charges_enabled": a["charges_enabled"],
            "connected": state.is_connected(a["id"]),
        }
        for a in state.accounts()
    ]


@dashboard.get("/")
def accounts():
    return render_template(
        "stripe_standin/accounts.html",
        rows=account_rows(),
        platform_name=standin().settings.platform_name,
    )


@dashboard.post("/dashboard/accounts")
def create_account():
    form = request.form
    fields = AccountFields(
        business_name=form.get("business_name", ""),
        email=form.get("email", ""),
        country=form.get("country", "") or "AU",
    )
    try:
        account = create_test_account(standin(), fields)
    except AccountFieldError as problem:
        flash(str(problem), "error")
        return redirect(url_for("dashboard.accounts"), code=303)
    flash(f"Created test account {display_name(account)} ({account['id']}).", "success")
    return redirect(url_for("dashboard.account", account_id=account["id"]), code=303)


@dashboard.get("/dashboard/<account_id>")
def account(account_id: str):
    running = standin()
    found = running.state.account(account_id)
    if found is None:
        return render_template("stripe_standin/missing.html", account_id=account_id), 404
    events = running.state.objects_of(account_id, "event")[::-1][:EVENTS_SHOWN]
    return render_template(
        "stripe_standin/account.html",
        account=found,
        payments=payment_rows(account_id),
        payouts=payout_rows(account_id),
        name=display_name(found),
        connected=running.state.is_connected(account_id),
        platform_name=running.settings.platform_name,
        events=[
            {
                "id": e["id"],
                "type": e["type"],
                "created": readable(e["created"]),
                "delivered": running.state.delivery_success(e["id"]),
            }
            for e in events
        ],
    )


@dashboard.post("/dashboard/<account_id>")
def save_account(account_id: str):
    try:
        before = standin().state.account(account_id)
        after = update_test_account(standin(), account_id, AccountFields.from_form(request.form))
    except AccountFieldError as problem:
        flash(str(problem), "error")
    else:
        if after is None:
            return render_template("stripe_standin/missing.html", account_id=account_id), 404
        if after == before:
            flash("Nothing changed.", "info")
        else:
            flash("Account saved. Stripe sent account.updated.", "success")
    return redirect(url_for("dashboard.account", account_id=account_id), code=303)


@dashboard.post("/dashboard/<account_id>/disconnect")
def disconnect(account_id: str):
    name = standin().settings.platform_name
    if connect.disconnect(standin(), account_id):
        flash(f"Disconnected {name}. Stripe sent account.application.deauthorized.", "success")
    else:
        flash(f"{name} was not connected to this account.", "error")
    return redirect(url_for("dashboard.account", account_id=account_id), code=303)


def payment_rows(account_id: str) -> list[dict]:
    charges = standin().state.objects_of(account_id, "charge")[::-1][:PAYMENTS_SHOWN]
    return [
        {
            "id": c["id"],
            "description": c["description"],
            "amount": formatted(c["amount"], c["currency"]),
            "refunded": formatted(c["amount_refunded"], c["currency"]),
            "created": readable(c["created"]),
            "status": c["status"],
            "refundable": c["status"] == "succeeded" and not c["refunded"],
        }
        for c in charges
    ]


def payout_rows(account_id: str) -> list[dict]:
    return [
        {
            "id": p["id"],
            "amount": formatted(p["amount"], p["currency"]),
            "arrival": readable(p["arrival_date"]),
            "status": p["status"],
            "failure": p["failure_message"],
        }
        for p in standin().state.objects_of(account_id, "payout")[::-1]
    ]


def minor_units(text: str) -> int | None:
    """``"20.00"`` → ``2000``; empty means the whole remaining amount."""
    if not text.strip():
        return None
    try:
        return int(Decimal(text.strip().lstrip("A$")) * 100)
    except InvalidOperation:
        raise ValueError(f"{text} is not an amount.") from None


@dashboard.post("/dashboard/<account_id>/charges/<charge_id>/refund")
def refund(account_id: str, charge_id: str):
    """Refund a payment as from Stripe's Dashboard: whole, or ``amount`` in dollars."""
    try:
        params = {"charge": charge_id, "amount": minor_units(request.form.get("amount", ""))}
        params["reason"] = request.form.get("reason") or None
        made = refunds.refund(standin(), account_id, params)
    except (StripeError, ValueError) as problem:
        flash(getattr(problem, "message", str(problem)), "error")
    else:
        amount = formatted(made["amount"], made["currency"])
        flash(f"Refunded {amount} ({made['status']}). Stripe sent charge.refunded.", "success")
    return redirect(url_for("dashboard.account", account_id=account_id), code=303)
