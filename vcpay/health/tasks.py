from celery import shared_task

from vcpay.extensions import db
from vcpay.health import services


@shared_task(name="vcpay.health.record_heartbeat", ignore_result=True)
def record_heartbeat(component: str = services.WORKERS) -> None:
    services.record_heartbeat(component)
    db.session.commit()
