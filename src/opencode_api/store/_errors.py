"""The store's branch of the exception tree.

OpenCodeError
└── StoreError                     store/: any persistence failure
    ├── UnsupportedDatabaseURL     open_store() got a URL scheme it does not know
    ├── StoreNotOpen               a method was called before open() or after close()
    ├── MigrationError             a schema migration failed (the cause is chained)
    ├── StoreConflict              a write violated a constraint (duplicate id, missing row)
    └── StoreValueError            the database refused a value (PostgreSQL class 22: bad data)
"""

from __future__ import annotations

from opencode_api.errors import OpenCodeError


class StoreError(OpenCodeError):
    """A persistence operation failed; the database driver's error is chained as the cause.

    ``public_message`` is what a client is told (the driver's text, with its addresses, stays in
    the log)."""

    public_message = "the session store is unavailable right now; try again shortly"


class UnsupportedDatabaseURL(StoreError, ValueError):
    """``open_store()`` does not know the URL's scheme."""


class StoreNotOpen(StoreError):
    """The store was used before ``open()`` or after ``close()``."""


class MigrationError(StoreError):
    """Applying a schema migration failed; nothing of that migration was kept."""


class StoreConflict(StoreError):
    """A write violated a constraint (a duplicate id, an unknown session or message).

    Nothing of that write was kept.
    """


class StoreValueError(StoreError, ValueError):
    """The database refused a value of the request itself (a character it cannot store, a number
    out of range): the client's mistake, not an outage."""
