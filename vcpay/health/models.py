from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from vcpay.extensions import db


class Heartbeat(db.Model):
    """The last time a background component proved it was alive."""

    __tablename__ = "heartbeats"

    component: Mapped[str] = mapped_column(String(40), primary_key=True)
    beat_at: Mapped[datetime]
    hostname: Mapped[str] = mapped_column(String(255))
