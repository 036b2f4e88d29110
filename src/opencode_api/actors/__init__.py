"""The domain: session actors running the agent loop, and the ``Runtime`` that hosts them."""

from opencode_api.actors._compaction import CompactionStatus
from opencode_api.actors._deps import SessionDeps, TurnSummary
from opencode_api.actors._errors import (
    BudgetExceededError,
    InvalidRequestError,
    NotFoundError,
    QuotaExceededError,
    SessionBusyError,
    SessionError,
)
from opencode_api.actors._events import (
    BusEvent,
    Done,
    ErrorEvent,
    MessageStart,
    QuestionEvent,
    ReasoningEvent,
    StepFinish,
    StepStart,
    TextEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnEvent,
)
from opencode_api.actors._file_inputs import (
    FileInputError,
    InputTooLargeError,
    UnsupportedInputError,
)
from opencode_api.actors._placement import Peer, Placement
from opencode_api.actors._quota import QuotaPolicy
from opencode_api.actors._runtime import Runtime
from opencode_api.actors._session_actor import SessionActor
from opencode_api.actors._sharded import ShardedRuntime, ShardsUnavailable, open_runtime
from opencode_api.actors._turn_request import BusyPolicy, SendOptions, TurnRequest
from opencode_api.actors._turn_stream import TurnStream
from opencode_api.actors._webhooks import WebhookConfigError, Webhooks, run_webhooks
from opencode_api.actors._worker_placement import socket_path
from opencode_api.llm import LLMClient, LLMError, LLMRequest, StreamEvent

__all__ = [
    "BudgetExceededError",
    "BusEvent",
    "BusyPolicy",
    "CompactionStatus",
    "Done",
    "ErrorEvent",
    "FileInputError",
    "InputTooLargeError",
    "InvalidRequestError",
    "LLMClient",
    "LLMError",
    "LLMRequest",
    "MessageStart",
    "NotFoundError",
    "Peer",
    "Placement",
    "QuestionEvent",
    "QuotaExceededError",
    "QuotaPolicy",
    "ReasoningEvent",
    "Runtime",
    "SendOptions",
    "SessionActor",
    "SessionBusyError",
    "SessionDeps",
    "SessionError",
    "ShardedRuntime",
    "ShardsUnavailable",
    "StepFinish",
    "StepStart",
    "StreamEvent",
    "TextEvent",
    "ToolCallEvent",
    "ToolResultEvent",
    "TurnEvent",
    "TurnRequest",
    "TurnStream",
    "TurnSummary",
    "UnsupportedInputError",
    "WebhookConfigError",
    "Webhooks",
    "open_runtime",
    "run_webhooks",
    "socket_path",
]
