"""Stripe webhooks: verified, stored in an inbox, then processed by Celery."""
