"""The store: the only package that talks to the database.

Public surface: open an engine (:func:`connect`), migrate (:func:`upgrade`),
bulk-write idempotently (:func:`upsert_mentions`, :func:`write_page`,
:func:`upsert_customers`), quarantine bad records, keep collector cursors and
the audit log, and read DataFrames for the dashboard (``queries``).
"""

from .engine import connect, read_connection
from .errors import (
    DatabaseUnavailableError,
    MigrationError,
    NotFoundError,
    QueryTimeoutError,
    RecordError,
    SchemaOutOfDateError,
    StoreError,
)
from .migrate import MigrationStatus, ensure_current, migration_status, upgrade
from .queries import (
    EXPORT_COLUMNS,
    MentionFilter,
    customers_frame,
    iter_export_rows,
    mention_volume,
    mentions_frame,
    overview_counts,
    quarantine_frame,
    source_counts,
    top_authors,
)
from .records import (
    MAX_TEXT_CHARS,
    Customer,
    Handle,
    Mention,
    check_text,
    normalize_handle,
    parse_handles,
    parse_timestamp,
)
from .writes import (
    CustomerWriteResult,
    Quarantined,
    WriteResult,
    chunked,
    load_cursor,
    quarantine,
    record_audit,
    save_cursor,
    upsert_customers,
    upsert_mentions,
    write_page,
)

__all__ = [
    "EXPORT_COLUMNS",
    "MAX_TEXT_CHARS",
    "Customer",
    "CustomerWriteResult",
    "DatabaseUnavailableError",
    "Handle",
    "Mention",
    "MentionFilter",
    "MigrationError",
    "MigrationStatus",
    "NotFoundError",
    "QueryTimeoutError",
    "Quarantined",
    "RecordError",
    "SchemaOutOfDateError",
    "StoreError",
    "WriteResult",
    "check_text",
    "chunked",
    "connect",
    "customers_frame",
    "ensure_current",
    "iter_export_rows",
    "load_cursor",
    "mention_volume",
    "mentions_frame",
    "migration_status",
    "normalize_handle",
    "overview_counts",
    "parse_handles",
    "parse_timestamp",
    "quarantine",
    "quarantine_frame",
    "read_connection",
    "record_audit",
    "save_cursor",
    "source_counts",
    "top_authors",
    "upgrade",
    "upsert_customers",
    "upsert_mentions",
    "write_page",
]
