"""Demo and test tooling beside the product, never part of it: local stand-ins for Stripe
(``sandbox.stripe``), Jira Service Management (``sandbox.jira``) and a mail server
(``sandbox.mail``), what they share (``sandbox.common``), and the ``make run`` supervisor
(``sandbox.demo``). They speak to vcpay only over HTTP and SMTP: nothing here imports vcpay or
workers, and vcpay imports nothing from here (tests/test_import_rules.py)."""
