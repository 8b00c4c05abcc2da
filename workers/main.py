"""Entry point for ``celery -A workers.main worker`` and ``celery -A workers.main beat``."""

from vcpay import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
