"""Kombu's file-system transport, with messages written atomically.

The stock transport creates a message file and then writes into it, while a consumer may move
and read the file in between: the worker then reads an empty message and stops. Here each
message is written to a side folder and renamed into the queue folder, which is atomic on one
file system, so a consumer only ever sees whole messages.
"""

import os
import tempfile
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

INCOMING = ".incoming"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        incoming = os.path.join(self.data_folder_out, INCOMING)
        try:
            os.makedirs(incoming, exist_ok=True)
            descriptor, partial = tempfile.mkstemp(dir=incoming)
            with os.fdopen(descriptor, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, os.path.join(self.data_folder_out, name))
        except OSError as error:
            raise ChannelError(f"Cannot add message {name!r} to the queue folder") from error


class Transport(filesystem.Transport):
    Channel = Channel
