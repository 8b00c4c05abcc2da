"""Processing Stripe events in the background; both tasks are safe to run twice."""

from celery import shared_task

from vcpay.webhooks import services


@shared_task(
    name="vcpay.webhooks.process_stripe_event", bind=True, max_retries=None, ignore_result=True
)
def process_stripe_event(self, row_id: int) -> None:
    try:
        services.process(row_id)
    except services.ProcessingFailed as failure:
        if failure.retry_in is not None:
            raise self.retry(countdown=failure.retry_in) from None


@shared_task(name="vcpay.webhooks.process_stripe_events", ignore_result=True)
def process_stripe_events(row_ids: list[int]) -> None:
    """A batch from the webhook view; an event that fails is retried on its own."""
    for row_id in row_ids:
        try:
            services.process(row_id)
        except services.ProcessingFailed as failure:
            if failure.retry_in is not None:
                process_stripe_event.apply_async((row_id,), countdown=failure.retry_in)


@shared_task(name="vcpay.webhooks.sweep_stripe_events", ignore_result=True)
def sweep_stripe_events() -> int:
    """Re-enqueue events whose message never reached a worker (a broker outage, say)."""
    return services.requeue(services.overdue_event_ids())
