"""The kinds of event a call's live stream carries: the values are the wire names screens read."""

from enum import StrEnum


class CallEventKind(StrEnum):
    CALL_STARTED = "call_started"
    CALL_ENDED = "call_ended"
    PARTICIPANT_JOINED = "participant_joined"
    PARTICIPANT_RECOGNISED = "participant_recognised"
    PAYMENT_REQUESTED = "payment_requested"
    PAYMENT_PROCESSING = "payment_processing"
    PAYMENT_EXPIRED = "payment_expired"
    PAYMENT_PAID = "payment_paid"
    PAYMENT_DECLINED = "payment_declined"
    PAYMENT_FAILED = "payment_failed"
    PAYMENT_REFUNDED = "payment_refunded"
    PAYMENT_CANCELLED = "payment_cancelled"
