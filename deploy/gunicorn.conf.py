"""gunicorn's settings for vcpay in production: ``gunicorn --config deploy/gunicorn.conf.py
wsgi:app`` (deploy/Procfile's web process). Every value comes from the environment, with the
defaults the README's settings table lists (VCPAY_WEB_*), so one image serves any size."""

import os

# PORT is where Procfile runners (honcho, foreman, most platforms) tell each web process to
# listen; VCPAY_WEB_HOST is 0.0.0.0 in a container, 127.0.0.1 for `make run-prod`.
host = os.environ.get("VCPAY_WEB_HOST") or "0.0.0.0"  # noqa: S104  # nosec B104  # container
bind = f"{host}:{os.environ.get('PORT') or '8000'}"
workers = int(os.environ.get("VCPAY_WEB_WORKERS") or "2")
worker_class = os.environ.get("VCPAY_WEB_WORKER_CLASS", "gthread")
if worker_class == "gevent":
    # An open call screen costs a greenlet and a connection, not a thread; streams take at most
    # VCPAY_WEB_CONNECTIONS less VCPAY_STREAM_RESERVED_THREADS (vcpay.calls.stream), the same
    # number gunicorn accepts. The worker patches the standard library before it imports the
    # app, which is why the app is never preloaded in the master.
    worker_connections = int(os.environ.get("VCPAY_WEB_CONNECTIONS") or "1000")
    preload_app = False
else:
    # Each open call screen holds a thread for its event stream (waiting, not working); streams
    # take at most VCPAY_WEB_THREADS less VCPAY_STREAM_RESERVED_THREADS of them, so pages,
    # sign-in and webhooks always find one.
    threads = int(os.environ.get("VCPAY_WEB_THREADS") or "256")
# Open call streams would hold a stop (a deploy, a scale-in) for the whole default grace; the
# call screen reconnects with Last-Event-ID to another instance and misses nothing.
graceful_timeout = 5
# A request that takes longer than this is stuck: the worker is replaced. Streams end on their
# own well before (VCPAY_STREAM_MAX_SECONDS) and send a heartbeat comment meanwhile.
timeout = 60
# Behind a proxy that keeps connections to the web instances open (deploy/nginx.conf).
keepalive = 75

# gunicorn's control socket has one path per user: instances on one host would share it.
control_socket_disable = True

accesslog = "-"
errorlog = "-"
# Secrets in addresses (reset links, OAuth codes, receipt tokens) are masked in the access log.
logger_class = "vcpay.access_log.MaskedAccessLogger"


def on_starting(server):
    """Each open stream is a file descriptor, and workers inherit the master's limit: raise
    the soft limit to the hard one the machine allows."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
