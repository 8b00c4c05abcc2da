"""A local stand-in for Stripe's API and Connect OAuth, spoken to over real HTTP.

One server is both the ``api`` and the ``connect`` base for ``stripe.StripeClient``. It serves
Connect OAuth (a consent page, token, deauthorize), accounts and events under ``/v1`` with
Stripe's authentication, ``Stripe-Account`` scoping, idempotency, paging and error shapes,
signs and delivers Connect webhooks, offers a Dashboard page per test account, and has
``/_sandbox`` controls for tests.

Checkout direct charges: ``/v1/checkout/sessions`` on a connected account (``checkout``, its
parameters in ``checkout_params`` and ``checkout_line_items``, its end in ``checkout_expiry``,
the routes in ``checkout_api``), a hosted pay page at ``/c/pay/<session>`` where test cards
decide the outcome (``paypage``, ``cards``), paying (``payments``, ``payment_steps``) and the
PaymentIntents, Charges and Refunds a payment leaves (``payment_objects``, ``refunds``,
``payments_api``), ``expand`` (``expand``), and a clock that expires sessions at
``expires_at`` (``chores``).

Saved cards: Checkout in setup mode (``checkout_setup``) saves a card on the same pay page
(``saved_cards``) for a Customer (``customers``); cards and SetupIntents are read, attached and
detached in ``payment_methods``; ``intents_api`` creates and confirms PaymentIntents on a saved
card (``off_session``), with a hosted 3-D Secure page for a card that needs its holder.

The back office: each charge, refund and payout moves money in the account's balance
(``balance``: balance transactions, Stripe's fee); payouts sweep what is available
(``payouts``, with an optional schedule); refunds can wait or fail (``refund_outcomes``);
``balance_api`` reads them and ``control_money`` decides them from tests.

See ``app.create_stripe_standin`` and ``server.start_stripe_standin``;
``python -m sandbox.stripe --help`` runs it as a process.

A new ``/v1`` resource is a blueprint under ``/v1`` registered in ``app.register_blueprints``:
the gateway has already authenticated, decoded and scoped the call, and made it idempotent.
Handlers read ``gateway.api_params(...)`` and ``gateway.current_account()``, keep objects with
``standin().state.put_object/get_object/objects_of``, page with ``lists.list_object``, raise
``errors.StripeError`` subclasses, and announce changes with ``runtime.emit_event``.
"""

from sandbox.stripe.app import create_stripe_standin
from sandbox.stripe.server import start_stripe_standin, stop_stripe_standin
from sandbox.stripe.settings import StripeStandinSettings

__all__ = [
    "StripeStandinSettings",
    "create_stripe_standin",
    "start_stripe_standin",
    "stop_stripe_standin",
]
