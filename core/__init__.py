"""gongkai (公开): publish a government disclosure item once, deliver it to every
channel, and keep a ledger that shows the online and offline versions are the same.

Library use::

    from gongkai import Publisher, Item
    result = Publisher.from_config("config.toml").publish(item)
"""

from .channel import Channel, ChannelContext, PreparedItem, Receipt, Rendition
from .errors import (
    AuthError,
    ConfigError,
    DeliveryError,
    GongkaiError,
    ItemProblem,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    TransientError,
)
from .item import Attachment, Item
from .publisher import Publisher
from .results import DeliveryOutcome, RunResult

__version__ = "0.1.0"

__all__ = [
    "Attachment",
    "AuthError",
    "Channel",
    "ChannelContext",
    "ConfigError",
    "DeliveryError",
    "DeliveryOutcome",
    "GongkaiError",
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
    "TransientError",
]
