"""The root of every error opencode-api raises: a leaf module that every layer may import.

OpenCodeError
├── ActorError, SubscriberLagged   runtime/: actors, mailboxes, supervisor, outboxes
├── StoreError                     store/: persistence
├── LLMError                       the LLM seam: provider failures (API.md's failure table)
├── SessionError                   actors/: not found, busy, invalid request, quota
└── HTTPError                      http/: what the front end refuses before the runtime
"""

from __future__ import annotations


class OpenCodeError(Exception):
    """Root of every error raised by opencode-api."""
