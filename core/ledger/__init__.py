"""The delivery ledger: interface, records and the SQLite backend."""

from .base import (
    DONE_STATES,
    QUEUED_STATES,
    DeliveryRow,
    Finish,
    IngestRecord,
    IngestResult,
    Ledger,
)
from .sqlite import SQLiteLedger

__all__ = [
    "DONE_STATES",
    "QUEUED_STATES",
    "DeliveryRow",
    "Finish",
    "IngestRecord",
    "IngestResult",
    "Ledger",
    "SQLiteLedger",
]
