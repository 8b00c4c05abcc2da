"""Payouts: the deposits Stripe makes into a clinic's bank, and what each one contains."""
