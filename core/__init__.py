"""gongkai (公开): publish a government disclosure item once, deliver it to every
channel, and keep a ledger that shows the online and offline versions are the same.

Library use::

    from gongkai import Publisher, Item
    result = Publisher.from_config("config.toml").publish(item)
"""

from gongkai.plugins.hookspecs import hookimpl

from .channel import Channel, ChannelContext, Guarantee, PreparedItem, Receipt, Rendition
from .errors import (
    AuthError,
    ChannelContractError,
    ChannelPaused,
    ConfigError,
    DeliveryError,
    GongkaiError,
    ItemProblem,
    LedgerWriteError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    StateError,
    TransientError,
)
from .item import Attachment, Item
from .ledger import AttemptRecord
from .publisher import Publisher
from .results import DeliveryOutcome, RunResult

__version__ = "0.1.0"

__all__ = [
    "Attachment",
    "AttemptRecord",
    "AuthError",
    "Channel",
    "ChannelContext",
    "ChannelContractError",
    "ChannelPaused",
    "ConfigError",
    "DeliveryError",
    "DeliveryOutcome",
    "GongkaiError",
    "LedgerWriteError",
    "Guarantee",
    "Item",
    "ItemProblem",
    "OutcomeUnknown",
    "PermanentError",
    "PreparedItem",
    "Publisher",
    "RateLimited",
    "Receipt",
    "Rendition",
    "RunResult",
    "StateError",
    "TransientError",
    "hookimpl",
]
