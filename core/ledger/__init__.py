"""The delivery ledger: the state machine, the backend interface and the SQLite backend."""

from .base import (
    AttemptRecord,
    Capabilities,
    ConfirmationRecord,
    DeliveryRow,
    EditionRecord,
    FileRecord,
    IngestRecord,
    IngestResult,
    ItemSummary,
    Ledger,
    Step,
)
from .sqlite import SQLiteLedger
from .states import (
    DONE,
    NEEDS_ATTENTION,
    QUEUED,
    Action,
    Event,
    IllegalTransition,
    Intent,
    State,
)

__all__ = [
    "DONE",
    "NEEDS_ATTENTION",
    "QUEUED",
    "Action",
    "AttemptRecord",
    "EditionRecord",
    "FileRecord",
    "Capabilities",
    "ConfirmationRecord",
    "DeliveryRow",
    "Event",
    "IllegalTransition",
    "IngestRecord",
    "IngestResult",
    "Intent",
    "ItemSummary",
    "Ledger",
    "SQLiteLedger",
    "State",
    "Step",
]
