"""The delivery ledger: the state machine, the backend interface and the SQLite backend."""

from .base import (
    AttemptRecord,
    Capabilities,
    DeliveryRow,
    EditionRecord,
    FileRecord,
    IngestRecord,
    IngestResult,
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
    "DeliveryRow",
    "Event",
    "IllegalTransition",
    "IngestRecord",
    "IngestResult",
    "Intent",
    "Ledger",
    "SQLiteLedger",
    "State",
    "Step",
]
