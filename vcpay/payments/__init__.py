"""Payment requests made in calls, paid on Stripe Checkout."""
