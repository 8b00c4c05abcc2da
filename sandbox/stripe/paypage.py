"""The hosted pay page a Checkout Session's ``url`` opens, like checkout.stripe.com: no API
key, anyone with the link. Test cards decide the outcome (``cards.TEST_CARDS``); a 3-D Secure
card goes through a simulated challenge page first. Also the receipt a charge links to."""

from typing import Any

from babel.numbers import format_currency
from flask import Blueprint, abort, redirect, render_template, request, url_for

from sandbox.stripe import checkout, checkout_expiry, payments
from sandbox.stripe.cards import HINTED, TEST_CARDS, read_card, read_payer, spaced
from sandbox.stripe.checkout_params import LOCALES
from sandbox.stripe.dashboard import readable
from sandbox.stripe.money import formatted
from sandbox.stripe.runtime import public_url, standin

paypage = Blueprint("paypage", __name__)

FORM_FIELDS = ("email", "cardnumber", "expiry", "cvc", "name", "delayed")
HINTS = [(spaced(card.number), card.summary) for card in TEST_CARDS if card.number in HINTED]


def session_or_404(session_id: str) -> tuple[str | None, dict[str, Any]]:
    found = checkout_expiry.find_session(standin(), session_id)
    if found is None:
        abort(404)
    return found


def render_page(
    account: str | None,
    session: dict[str, Any],
    form: dict[str, str] | None = None,
    problems: dict[str, str] | None = None,
    decline: str | None = None,
    status: int = 200,
):
    """The form while the session is open; otherwise what became of it, in the session's
    language (its ``locale``, or the browser's with ``auto``) as far as the page's ``lang``
    and its amounts go: the stand-in's own words stay English."""
    running = standin()
    lang = page_language(session.get("locale"))

    def shown(amount: int, currency: str) -> str:
        return format_currency(amount / 100, currency.upper(), locale=lang.replace("-", "_"))

    items = checkout.line_items(running, account, session["id"])["data"]
    template = "pay.html" if session["status"] == "open" else "pay_closed.html"
    if session["mode"] == "setup" and session["status"] == "open":
        template = "save_card.html"
    if form is None:
        form = {"email": session.get("customer_email") or ""}
    page = render_template(
        f"stripe_standin/{template}",
        session=session,
        merchant=checkout_expiry.merchant_name(running, account),
        items=[{**i, "shown": shown(i["amount_total"], i["currency"])} for i in items],
        total=None
        if session["amount_total"] is None
        else shown(session["amount_total"], session["currency"]),
        lang=lang,
        form=form,
        problems=problems or {},
        decline=decline,
        hints=HINTS,
    )
    return page, status


def page_language(locale: str | None) -> str:
    if locale and locale != "auto":
        return locale
    return request.accept_languages.best_match(LOCALES[1:]) or "en"


@paypage.get("/c/pay/<session_id>")
def show(session_id: str):
    account, session = session_or_404(session_id)
    return render_page(account, session)


@paypage.post("/c/pay/<session_id>")
def pay(session_id: str):
    account, session = session_or_404(session_id)
    if session["status"] != "open":
        return render_page(account, session, status=409)
    form = {name: request.form.get(name, "") for name in FORM_FIELDS}
    if form["delayed"]:
        payer, problems = read_payer(form)
    else:
        payer, problems = read_card(form)
    if payer is None:
        return render_page(account, session, form, problems, status=400)
    try:
        if form["delayed"]:
            attempt = payments.pay_by_debit(standin(), account, session_id, payer, public_url())
        else:
            attempt = payments.pay_by_card(standin(), account, session_id, payer, public_url())
    except payments.PaymentRefused as refused:
        return render_page(account, refused.session or session, status=409)
    return answer(account, attempt, form)


def answer(account: str | None, attempt: payments.Attempt, form: dict[str, str]):
    if attempt.outcome == "declined":
        message = attempt.error["message"] if attempt.error else "Your card was declined."
        kept = {"email": form.get("email", ""), "name": form.get("name", "")}
        return render_page(account, attempt.session, kept, decline=message, status=402)
    return redirect(attempt.next_url, code=303)


@paypage.get("/c/pay/<session_id>/authenticate/<payment_intent_id>")
def challenge(session_id: str, payment_intent_id: str):
    account, session = session_or_404(session_id)
    intent = standin().state.get_object(account, payment_intent_id)  # or a SetupIntent
    waiting = (
        session["status"] == "open"
        and intent is not None
        and payment_intent_id in (session["payment_intent"], session["setup_intent"])
        and intent["status"] == "requires_action"
    )
    if not waiting:
        return redirect(url_for("paypage.show", session_id=session_id), code=303)
    return render_template(
        "stripe_standin/authenticate.html",
        session=session,
        merchant=checkout_expiry.merchant_name(standin(), account),
        total=None
        if session["amount_total"] is None
        else formatted(session["amount_total"], session["currency"]),
        payment_intent_id=payment_intent_id,
    )


@paypage.post("/c/pay/<session_id>/authenticate/<payment_intent_id>")
def authenticated(session_id: str, payment_intent_id: str):
    account, _ = session_or_404(session_id)
    completed = request.form.get("outcome") == "complete"
    try:
        attempt = payments.authenticate(
            standin(), account, session_id, payment_intent_id, completed, public_url()
        )
    except payments.PaymentRefused:
        return redirect(url_for("paypage.show", session_id=session_id), code=303)
    return answer(account, attempt, {})


@paypage.get("/receipts/payment/<charge_id>")
def receipt(charge_id: str):
    found = standin().state.find_object(charge_id)
    if found is None or found[1].get("object") != "charge":
        abort(404)
    account, charge = found
    card = charge["payment_method_details"].get("card") or {}
    return render_template(
        "stripe_standin/receipt.html",
        charge=charge,
        card=card,
        merchant=checkout_expiry.merchant_name(standin(), account),
        paid_at=readable(charge["created"]),
        amount=formatted(charge["amount"], charge["currency"]),
        refunded=formatted(charge["amount_refunded"], charge["currency"]),
    )
