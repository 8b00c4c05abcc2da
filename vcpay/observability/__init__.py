"""What an operator sees of vcpay: structured logs with ids (logs.py, context.py), Prometheus
metrics (metrics.py, served by views.py), and the hooks that feed them from web requests and
Celery tasks (hooks.py). Health and readiness are vcpay/health's.

Kept empty: gunicorn's master imports logs.py (for its access log) before it forks workers,
and a gevent worker must find celery, redis and the rest not imported yet."""
