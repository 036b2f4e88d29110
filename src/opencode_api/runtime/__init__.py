"""opencode_api.runtime: a generic asyncio actor library (mailboxes, outboxes, supervisor, refs).

It knows nothing of LLMs or HTTP; see ``Supervisor`` for the entry point.
"""

from opencode_api.errors import OpenCodeError
from opencode_api.runtime._actor import Actor
from opencode_api.runtime._clock import Clock, FakeClock, SystemClock
from opencode_api.runtime._errors import (
    ActivationError,
    ActorDeadError,
    ActorError,
    ActorLimitReached,
    AskTimeout,
    MailboxFull,
    SubscriberLagged,
    SupervisorClosed,
)
from opencode_api.runtime._hooks import SupervisorHooks, SupervisorStats
from opencode_api.runtime._outbox import Outbox, OutboxItem, Subscription
from opencode_api.runtime._ref import ActorRef
from opencode_api.runtime._supervisor import Supervisor

__all__ = [
    "ActivationError",
    "Actor",
    "ActorDeadError",
    "ActorError",
    "ActorLimitReached",
    "ActorRef",
    "AskTimeout",
    "Clock",
    "FakeClock",
    "MailboxFull",
    "OpenCodeError",
    "Outbox",
    "OutboxItem",
    "SubscriberLagged",
    "Subscription",
    "Supervisor",
    "SupervisorClosed",
    "SupervisorHooks",
    "SupervisorStats",
    "SystemClock",
]
