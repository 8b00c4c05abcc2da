"""The WSGI entry point: ``gunicorn wsgi:app``."""

from vcpay import create_app

app = create_app()
