"""Kombu's Redis transport, kept alive when Redis goes away while a task is under way.

When the broker connection drops, the worker closes it: kombu first forgets which broker the
transport belongs to, then closes the channel, which puts the unacknowledged tasks back on the
queue and so needs the broker's address. The stock channel reads it from the forgotten
connection and fails with ``AttributeError``, which the worker treats as unrecoverable: it
stops for good instead of reconnecting. Here each channel keeps the address it was opened with.
The tasks themselves are never at risk: an unacknowledged task stays in Redis and comes back
after the visibility timeout either way.
"""

from kombu.transport import redis


class Channel(redis.Channel):
    def __init__(self, connection, *args, **kwargs):
        self._broker = connection.client
        super().__init__(connection, *args, **kwargs)

    def _connparams(self, asynchronous=False):
        if self.connection.client is None:
            self.connection.client = self._broker
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    Channel = Channel
