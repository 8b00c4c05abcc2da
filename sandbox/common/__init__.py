"""What the stand-ins share: serving a WSGI app in the background, the board of injected API
faults and the log of calls, the ``/_sandbox`` control client tests and benchmarks use,
webhook delivery, and files written whole."""
