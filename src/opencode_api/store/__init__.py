"""Persistence behind one protocol: SQLite (default), PostgreSQL, Supabase REST."""

from opencode_api.store._errors import (
    MigrationError,
    StoreConflict,
    StoreError,
    StoreNotOpen,
    StoreValueError,
    UnsupportedDatabaseURL,
)
from opencode_api.store._factory import open_store, open_store_for
from opencode_api.store._models import (
    CompactionState,
    DailyUsage,
    FileData,
    ForkOrigin,
    Message,
    MessagePage,
    MessageStatus,
    ModelCost,
    Owner,
    Part,
    Question,
    QuestionItem,
    QuestionOption,
    Reservation,
    RevertPoint,
    Session,
    SessionCost,
    StepRecord,
    Todo,
    TodoPriority,
    TodoStatus,
    utcnow,
)
from opencode_api.store._postgres import PostgresStore
from opencode_api.store._protocol import ClearableField, Order, Store
from opencode_api.store._sqlite import SqliteStore
from opencode_api.store._supabase import SupabaseStore
from opencode_api.store._webhook_records import WebhookDelivery, WebhookStatus
from opencode_api.usage import Usage

__all__ = [
    "ClearableField",
    "CompactionState",
    "DailyUsage",
    "FileData",
    "ForkOrigin",
    "Message",
    "MessagePage",
    "MessageStatus",
    "MigrationError",
    "ModelCost",
    "Order",
    "Owner",
    "Part",
    "PostgresStore",
    "Question",
    "QuestionItem",
    "QuestionOption",
    "Reservation",
    "RevertPoint",
    "Session",
    "SessionCost",
    "SqliteStore",
    "StepRecord",
    "Store",
    "StoreConflict",
    "StoreError",
    "StoreNotOpen",
    "StoreValueError",
    "SupabaseStore",
    "Todo",
    "TodoPriority",
    "TodoStatus",
    "UnsupportedDatabaseURL",
    "Usage",
    "WebhookDelivery",
    "WebhookStatus",
    "open_store",
    "open_store_for",
    "utcnow",
]
