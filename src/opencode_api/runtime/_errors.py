"""The runtime's branch of the exception tree (the root is ``opencode_api.errors``).

OpenCodeError
├── ActorError                     runtime/: actors, mailboxes, supervisor
│   ├── MailboxFull                the mailbox is at capacity (sender gets it at once)
│   ├── ActorDeadError             the actor stopped or crashed before answering
│   ├── ActorLimitReached          the live-actor cap is reached and every actor is busy
│   ├── SupervisorClosed           the supervisor is shutting down or closed
│   ├── ActivationError            the factory failed to build the actor
│   └── AskTimeout                 no answer within the ask timeout (also a TimeoutError)
├── SubscriberLagged               an outbox subscriber fell behind its buffer (resubscribe)
└── (store/, actors/ and http/ add their own branches)
"""

from __future__ import annotations

from opencode_api.errors import OpenCodeError


class ActorError(OpenCodeError):
    """An actor could not take or answer a message."""


class MailboxFull(ActorError):
    """The actor's mailbox is at capacity; the message was not enqueued."""


class ActorDeadError(ActorError):
    """The actor stopped or crashed before it handled the message."""


class ActorLimitReached(ActorError):
    """The live-actor cap is reached and no idle actor can be passivated to make room."""


class SupervisorClosed(ActorError):
    """The supervisor no longer accepts messages (shutting down or closed)."""


class ActivationError(ActorError):
    """The actor factory raised while creating the actor; the cause is chained."""


class AskTimeout(ActorError, TimeoutError):
    """No answer arrived within the ask timeout."""


class SubscriberLagged(OpenCodeError):
    """The subscriber fell further behind than its buffer allows, or asked for events no longer
    kept.

    ``last_seq`` is the last sequence number the subscriber received (or asked to resume after);
    resubscribe after it to continue, if the outbox still holds the following events.
    """

    def __init__(self, last_seq: int | None, oldest_available: int | None = None) -> None:
        super().__init__(
            f"subscriber lagged behind the outbox (last seq {last_seq}, "
            f"oldest available {oldest_available})"
        )
        self.last_seq = last_seq
        self.oldest_available = oldest_available
