"""Payments: every payment request a person may see, filtered, totalled, charted, each one's
timeline, its receipt sent again, and the selection exported as CSV."""
