"""Background work for payment requests."""

from celery import shared_task

from vcpay.integrations.stripe_gateway import StripeGateway
from vcpay.payments import services


@shared_task(name="vcpay.payments.reconcile_payment_requests", ignore_result=True)
def reconcile_payment_requests() -> int:
    """Catch what a missed webhook would have told: expiries, payments, async outcomes."""
    return services.reconcile(StripeGateway.for_app())
