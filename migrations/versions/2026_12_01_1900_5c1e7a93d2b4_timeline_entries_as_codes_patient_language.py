"""timeline entries as codes and parameters; the patient's language on each participant

Revision ID: 5c1e7a93d2b4
Revises: 0e0f1e316ab0
Create Date: 2026-12-01 19:00:00

An enablement request's timeline was stored as English sentences, so a Serbian reader saw
English. Entries are now a code (the existing ``kind``, or ``params["code"]``) and parameters,
worded when shown (vcpay.enablement.wording). The entries already written are read back into
codes where their sentence is one vcpay wrote; any other keeps its text and no parameters, and
is shown as written. Downgrading writes the English sentence back into ``message``.

A patient's language is kept on their participant row so Stripe Checkout can be asked for it
when the clinician requests a payment.
"""

import json
import re

import sqlalchemy as sa
from alembic import op

revision = "5c1e7a93d2b4"
down_revision = "0e0f1e316ab0"
branch_labels = None
depends_on = None

# (kind, the sentence vcpay wrote, the code it is now); the groups are the parameters.
WRITTEN = [
    ("drafted", r"Request drafted\.", "drafted"),
    ("submitted", r"Sent to (?P<name>.+) for endorsement\.", "submitted"),
    ("endorsed", r"Sent by the authorised telehealth manager\.", "sent_directly"),
    ("endorsed", r"Endorsed by (?P<name>.+)\.", "endorsed"),
    ("sent_back", r"Sent back by (?P<name>.+?): (?P<reason>.*)", "sent_back"),
    ("withdrawn", r"Withdrawn by (?P<name>.+)\.", "withdrawn"),
    ("raise_failed", r"Not sent yet: (?P<error>.*) vcpay will try again\.", "raise_failed"),
    ("raised", r"Raised in the service desk as (?P<key>.+)\.", "raised"),
    ("status_changed", r"Service desk status: (?P<status>.*)\.", "status_changed"),
    (
        "approved",
        r"Approved in the service desk\. Enabled: none \(already enabled\)\.",
        "approved_none",
    ),
    ("approved", r"Approved in the service desk\. Enabled: (?P<clinics>.+)\.", "approved"),
    (
        "declined",
        r"Declined in the service desk\.(?: Resolution: [^.]*\.)? Service desk: (?P<comment>.+)",
        "declined_with_comment",
    ),
    ("declined", r"Declined in the service desk\.(?: Resolution: [^.]*\.)?", "declined"),
    (
        "needs_review",
        r"The service desk moved (?P<key>\S+) to '.*' while its approval is still pending\..*",
        "needs_review",
    ),
    ("commented", r"vcpay commented on the service desk request\.", "commented"),
]

# The English wording of each code, for a downgrade.
ENGLISH = {
    "drafted": "Request drafted.",
    "submitted": "Sent to %(name)s for endorsement.",
    "endorsed": "Endorsed by %(name)s.",
    "sent_directly": "Sent by the authorised telehealth manager.",
    "sent_back": "Sent back by %(name)s: %(reason)s",
    "withdrawn": "Withdrawn by %(name)s.",
    "raise_failed": "Not sent to the service desk yet; vcpay will try again.",
    "raised": "Raised in the service desk as %(key)s.",
    "status_changed": "Service desk status: %(status)s.",
    "approved": "Approved in the service desk. Enabled: %(clinics)s.",
    "approved_none": "Approved in the service desk. Every clinic was already enabled.",
    "declined": "Declined in the service desk.",
    "declined_with_comment": "Declined in the service desk: %(comment)s",
    "needs_review": (
        "The service desk moved %(key)s on while its approval is still pending. vcpay has not "
        "enabled anything; a person needs to check it."
    ),
    "commented": "vcpay commented on the service desk request.",
}

events = sa.table(
    "enablement_request_events",
    sa.column("id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("message", sa.Text),
    sa.column("params", sa.JSON),
)


def read_back(kind: str, message: str) -> dict | None:
    for written_kind, pattern, code in WRITTEN:
        if written_kind != kind:
            continue
        match = re.fullmatch(pattern, message, re.DOTALL)
        if match:
            params = {k: v for k, v in match.groupdict().items() if v is not None}
            if code != kind:
                params["code"] = code
            return params
    return None


def upgrade():
    with op.batch_alter_table("enablement_request_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("params", sa.JSON(), nullable=True))
    with op.batch_alter_table("call_participants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("locale", sa.String(length=16), nullable=False, server_default="")
        )

    bind = op.get_bind()
    for row in bind.execute(sa.select(events.c.id, events.c.kind, events.c.message)).all():
        params = read_back(row.kind, row.message or "")
        if params is not None:
            bind.execute(events.update().where(events.c.id == row.id).values(params=params))


def downgrade():
    bind = op.get_bind()
    query = sa.select(events.c.id, events.c.kind, events.c.message, events.c.params)
    for row in bind.execute(query).all():
        if row.message or row.params is None:
            continue
        params = row.params if isinstance(row.params, dict) else json.loads(row.params)
        english = ENGLISH.get(params.get("code", row.kind), "")
        try:
            message = english % params
        except (KeyError, TypeError, ValueError):
            message = english
        bind.execute(events.update().where(events.c.id == row.id).values(message=message))
    with op.batch_alter_table("call_participants", schema=None) as batch_op:
        batch_op.drop_column("locale")
    with op.batch_alter_table("enablement_request_events", schema=None) as batch_op:
        batch_op.drop_column("params")
