"""SQLite state: the only module with SQL.

One connection (aiosqlite), WAL, versioned migrations, and a lock so that every
read and write transaction of this process runs one at a time on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import aiosqlite

from bot.conditional import PollFingerprint
from bot.diff import DiffResult, StoredPosting
from bot.errors import StoreError
from bot.identity import JobIndex, company_key
from bot.models import Change, ChangeKind, FieldChange, Notice, Posting, Subscription
from bot.source_health import Health, HealthState

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            url TEXT NOT NULL,
            baseline_done INTEGER NOT NULL DEFAULT 0,
            last_poll_at REAL,
            last_success_at REAL,
            last_error TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            fingerprint TEXT,
            retry_not_before REAL
        )""",
        """CREATE TABLE postings (
            source TEXT NOT NULL,
            posting_id TEXT NOT NULL,
            data TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            first_seen_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            closed_at REAL,
            missing_polls INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (source, posting_id)
        )""",
        "CREATE INDEX postings_open ON postings (source) WHERE closed_at IS NULL",
        """CREATE TABLE changes (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            posting_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            fields TEXT NOT NULL,
            posting TEXT NOT NULL,
            detected_at REAL NOT NULL
        )""",
        "CREATE INDEX changes_posting ON changes (source, posting_id)",
        """CREATE TABLE subscriptions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            target TEXT NOT NULL,
            query TEXT NOT NULL,
            notify TEXT NOT NULL,
            paused INTEGER NOT NULL DEFAULT 0,
            origin TEXT NOT NULL,
            created_by TEXT,
            created_at REAL NOT NULL
        )""",
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            idempotency_key TEXT NOT NULL UNIQUE,
            subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
            change_id INTEGER NOT NULL REFERENCES changes (id),
            target TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            created_at REAL NOT NULL,
            sent_at REAL,
            message_ref TEXT
        )""",
        "CREATE INDEX outbox_due ON outbox (status, next_attempt_at)",
        "CREATE INDEX outbox_subscription ON outbox (subscription_id)",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('subscriptions_version', 0)",
    ),
    (
        """CREATE TABLE chat_sources (
            name TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            url TEXT NOT NULL,
            interval REAL,
            enabled INTEGER NOT NULL DEFAULT 1,
            added_by TEXT NOT NULL,
            added_at REAL NOT NULL
        )""",
        "CREATE INDEX subscriptions_created_by ON subscriptions (created_by)",
        "CREATE INDEX subscriptions_target ON subscriptions (target)",
    ),
    (
        # built without its detail document (its fetch failed): not comparable yet
        "ALTER TABLE postings ADD COLUMN partial INTEGER NOT NULL DEFAULT 0",
    ),
    (
        "ALTER TABLE sources ADD COLUMN health TEXT NOT NULL DEFAULT 'ok'",
        "ALTER TABLE sources ADD COLUMN health_since REAL",
        "ALTER TABLE sources ADD COLUMN usual_details REAL",
        # messages to the operator about careerbot itself, delivered like alerts
        """CREATE TABLE notices (
            id INTEGER PRIMARY KEY,
            idempotency_key TEXT NOT NULL UNIQUE,
            target TEXT NOT NULL,
            source TEXT,
            title TEXT NOT NULL,
            detail TEXT NOT NULL,
            recovered INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            created_at REAL NOT NULL,
            sent_at REAL
        )""",
        "CREATE INDEX notices_due ON notices (status, next_attempt_at)",
        "CREATE INDEX postings_closed ON postings (closed_at) WHERE closed_at IS NOT NULL",
    ),
    (
        # delivery modes (bot/delivery_modes.py): "instant", "daily 09:00", "weekly mon 09:00"
        "ALTER TABLE subscriptions ADD COLUMN delivery TEXT NOT NULL DEFAULT 'instant'",
        # held for a digest (its time, or the end of quiet hours, is next_attempt_at)
        "ALTER TABLE outbox ADD COLUMN digest INTEGER NOT NULL DEFAULT 0",
        # time zone and quiet hours of a chat user ("slack:U1") or of a target
        """CREATE TABLE delivery_settings (
            owner TEXT PRIMARY KEY,
            timezone TEXT,
            quiet TEXT
        )""",
    ),
    (
        # vectors of postings for semantic query terms (bot/semantic.py); text_hash is of
        # the text the vector was computed from, so a changed posting gets a new one
        """CREATE TABLE embeddings (
            source TEXT NOT NULL,
            posting_id TEXT NOT NULL,
            model TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (source, posting_id)
        )""",
        """CREATE TRIGGER embeddings_follow_postings AFTER DELETE ON postings BEGIN
            DELETE FROM embeddings
            WHERE source = old.source AND posting_id = old.posting_id;
        END""",
    ),
    (
        # one job, one alert (bot/identity.py): the job a posting belongs to, shared by
        # the same role on other sources or in other cities; NULL until assigned
        "ALTER TABLE postings ADD COLUMN job TEXT",
        "ALTER TABLE postings ADD COLUMN company_key TEXT",
        "ALTER TABLE changes ADD COLUMN job TEXT",
        "CREATE INDEX postings_job ON postings (job)",
        "CREATE INDEX postings_company ON postings (company_key) WHERE closed_at IS NULL",
        "CREATE INDEX changes_job ON changes (job)",
    ),
)

log = logging.getLogger(__name__)

PENDING, SENT, DEAD = "pending", "sent", "dead"

# Queue one alert (key, change, target, now, created_at, subscription): behind the
# target's held alerts, so a follow-up never overtakes its original; never for a paused
# subscription; and one new-job alert per job at a time (when sent, it lists them all).
_QUEUE_ALERT = """INSERT INTO outbox (idempotency_key, subscription_id, change_id, target,
                                     next_attempt_at, created_at)
    SELECT ?1, s.id, ?2, ?3,
           MAX(?4, COALESCE((SELECT MAX(held.next_attempt_at) FROM outbox held
                             WHERE held.target = ?3
                               AND held.status = 'pending'
                               AND NOT held.digest), ?4)),
           ?5
    FROM subscriptions s WHERE s.id = ?6 AND NOT s.paused
      AND NOT EXISTS (
        SELECT 1 FROM changes mine
        JOIN changes theirs ON theirs.job = mine.job AND theirs.kind = 'new'
        JOIN outbox queued ON queued.change_id = theirs.id
        WHERE mine.id = ?2 AND mine.kind = 'new'
          AND queued.subscription_id = s.id AND queued.status = 'pending')
    ON CONFLICT (idempotency_key) DO NOTHING"""
_KEYS_PER_STATEMENT = 400  # two parameters each, under SQLite's old limit of 999
Queue = Literal["outbox", "notices"]  # the two tables the delivery worker drains

_REGISTER_SOURCE = """INSERT INTO sources (name, type, url) VALUES (?, ?, ?)
    ON CONFLICT (name) DO UPDATE SET
      type = excluded.type, url = excluded.url, baseline_done = 0, fingerprint = NULL
    WHERE sources.type != excluded.type OR sources.url != excluded.url"""


@dataclass(frozen=True, slots=True)
class SourceState:
    name: str
    type: str
    baseline_done: bool
    last_poll_at: float | None
    last_success_at: float | None
    last_error: str | None
    consecutive_failures: int
    open_postings: int
    fingerprint: PollFingerprint | None = None
    retry_not_before: float | None = None
    health: Health = field(default_factory=Health)


@dataclass(frozen=True, slots=True)
class ChatSource:
    """A source added from chat; ``interval`` None means the default."""

    name: str
    type: str
    url: str
    interval: float | None
    enabled: bool
    added_by: str
    added_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    target: str
    last_error: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class HeldTarget:
    """A target whose alerts wait after a failure: how many, the next try, and why."""

    target: str
    waiting: int
    next_try: float
    reason: str


@dataclass(frozen=True, slots=True)
class Match:
    """A change that a subscription wants delivered."""

    change_index: int  # position in DiffResult.changes
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    target: str
    attempts: int
    change: Change
    subscription: Subscription
    detected_at: float
    # The platform's id of the first alert this subscription got for the posting's job,
    # when that one was sent: follow-ups (changed, closed, another listing…) go into its thread.
    original_ref: str | None = None
    key: str | None = None  # the idempotency key
    digest: bool = False  # held for a digest, not sent alone
    # For a new posting: the other open listings of its job, and whether this
    # subscription was already alerted to that job (this is another listing of it).
    also: tuple[Posting, ...] = ()
    sighting: bool = False
    table: ClassVar[Queue] = "outbox"


@dataclass(frozen=True, slots=True)
class NoticeItem:
    id: int
    target: str
    attempts: int
    notice: Notice
    table: ClassVar[Queue] = "notices"


@dataclass(frozen=True, slots=True)
class PruneCounts:
    postings: int
    changes: int
    alerts: int
    notices: int


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    pending: int
    sent: int
    dead: int


def idempotency_key(subscription_id: int, posting: Posting, change_id: int) -> str:
    """One key per (subscription, posting, change); 25 characters, so it also fits
    a platform nonce (Discord's ``nonce`` is at most 25)."""
    raw = f"{subscription_id}\x1f{posting.source}\x1f{posting.id}\x1f{change_id}"
    return hashlib.sha256(raw.encode()).hexdigest()[:25]


class Store:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        try:
            if str(path) != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(str(path), isolation_level=None)
        except (OSError, sqlite3.Error) as err:
            raise StoreError(f"cannot open database {str(path)!r}: {err}") from None
        return await cls._prepared(db, str(path))

    @classmethod
    async def open_snapshot(cls, path: Path) -> Store:
        """An in-memory copy of the database at ``path`` (empty if there is none):
        work on it changes nothing on disk."""
        source = _read_only_uri(path)
        try:
            db = await aiosqlite.connect(":memory:", isolation_level=None)
            if source is not None:
                async with aiosqlite.connect(source, uri=True) as disk:
                    await disk.backup(db)
        except (OSError, sqlite3.Error) as err:
            raise StoreError(f"cannot read database {str(path)!r}: {err}") from None
        return await cls._prepared(db, str(path))

    @classmethod
    async def _prepared(cls, db: aiosqlite.Connection, path: str) -> Store:
        db.row_factory = aiosqlite.Row
        store = cls(db)
        try:
            await store._configure()
            await store._migrate()
        except sqlite3.DatabaseError as err:
            await db.close()
            raise StoreError(f"cannot use database {path!r}: {err}") from None
        except StoreError:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        async with self._lock:
            await self._db.close()

    async def _configure(self) -> None:
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA busy_timeout=5000",
            "PRAGMA foreign_keys=ON",
        ):
            await self._db.execute(pragma)

    async def _migrate(self) -> None:
        await self._db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )
        current = await self._scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        if current > len(MIGRATIONS):
            raise StoreError(
                f"the database schema is version {current}, newer than this careerbot knows "
                f"({len(MIGRATIONS)}); upgrade careerbot"
            )
        for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
            async with self._transaction():
                for statement in statements:
                    await self._db.execute(statement)
                await self._db.execute(
                    "INSERT INTO schema_migrations (version) VALUES (?)", (version,)
                )

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[None]:
        await self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            await self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                await self._db.execute("ROLLBACK")
            raise

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[None]:
        async with self._lock, _database_errors(), self._transaction():
            yield

    # execute_fetchall: one trip to aiosqlite's thread instead of three (execute,
    # fetch, close), which the event loop pays for on every poll.
    async def _scalar(self, sql: str, params: Sequence[Any] = ()) -> int:
        rows = list(await self._db.execute_fetchall(sql, params))
        return int(rows[0][0]) if rows and rows[0][0] is not None else 0

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock, _database_errors():
            return list(await self._db.execute_fetchall(sql, params))

    async def schema_version(self) -> int:
        async with self._lock:
            return await self._scalar("SELECT MAX(version) FROM schema_migrations")

    # --- sources -------------------------------------------------------------

    async def register_sources(self, sources: Iterable[tuple[str, str, str]]) -> None:
        """Make sure a state row exists for each (name, type, url). A source whose
        type or URL changed starts again with a silent baseline."""
        async with self._write():
            await self._db.executemany(_REGISTER_SOURCE, list(sources))

    async def add_chat_source(self, source: ChatSource) -> None:
        """Store a source added from chat, with its state row, in one transaction."""
        async with self._write():
            await self._db.execute(
                """INSERT INTO chat_sources (name, type, url, interval, enabled, added_by, added_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (
                    source.name,
                    source.type,
                    source.url,
                    source.interval,
                    source.enabled,
                    source.added_by,
                    source.added_at,
                ),
            )
            await self._db.execute(_REGISTER_SOURCE, (source.name, source.type, source.url))

    async def chat_sources(self) -> list[ChatSource]:
        rows = await self._rows("SELECT * FROM chat_sources ORDER BY name")
        return [
            ChatSource(
                row["name"],
                row["type"],
                row["url"],
                row["interval"],
                bool(row["enabled"]),
                row["added_by"],
                row["added_at"],
            )
            for row in rows
        ]

    async def set_chat_source_enabled(self, name: str, enabled: bool) -> bool:
        async with self._write():
            cursor = await self._db.execute(
                "UPDATE chat_sources SET enabled = ? WHERE name = ?", (enabled, name)
            )
        return cursor.rowcount > 0

    async def remove_chat_source(self, name: str) -> bool:
        """Forget a chat source with its state and postings; the changes already
        recorded stay, so alerts queued for them are still delivered."""
        async with self._write():
            cursor = await self._db.execute("DELETE FROM chat_sources WHERE name = ?", (name,))
            if cursor.rowcount == 0:
                return False
            await self._db.execute("DELETE FROM postings WHERE source = ?", (name,))
            await self._db.execute("DELETE FROM sources WHERE name = ?", (name,))
        return True

    async def source_states(self) -> list[SourceState]:
        return await self._source_states("")

    async def source_state(self, name: str) -> SourceState | None:
        found = await self._source_states("WHERE s.name = ?", (name,))
        return found[0] if found else None

    async def _source_states(self, where: str, params: Sequence[Any] = ()) -> list[SourceState]:
        rows = await self._rows(
            f"""SELECT s.*, (SELECT COUNT(*) FROM postings p
                             WHERE p.source = s.name AND p.closed_at IS NULL) AS open_postings
                FROM sources s {where} ORDER BY s.name""",
            params,
        )
        return [
            SourceState(
                name=row["name"],
                type=row["type"],
                baseline_done=bool(row["baseline_done"]),
                last_poll_at=row["last_poll_at"],
                last_success_at=row["last_success_at"],
                last_error=row["last_error"],
                consecutive_failures=row["consecutive_failures"],
                open_postings=row["open_postings"],
                fingerprint=PollFingerprint.from_json(row["fingerprint"]),
                retry_not_before=row["retry_not_before"],
                health=Health(
                    HealthState(row["health"]), row["health_since"], row["usual_details"]
                ),
            )
            for row in rows
        ]

    async def set_health(self, source: str, health: Health, notice: Notice | None) -> None:
        """Record a source's health and, in the same transaction, the notice that
        tells the operator about its change (at most once: notices are keyed)."""
        async with self._write():
            await self._db.execute(
                "UPDATE sources SET health = ?, health_since = ?, usual_details = ? WHERE name = ?",
                (health.state.value, health.since, health.usual_details, source),
            )
            if notice is not None:
                await self._db.execute(
                    """INSERT OR IGNORE INTO notices (idempotency_key, target, source, title,
                       detail, recovered, next_attempt_at, created_at)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        notice.key,
                        notice.target,
                        notice.source,
                        notice.title,
                        notice.detail,
                        notice.recovered,
                        notice.created_at,
                        notice.created_at,
                    ),
                )

    async def record_failure(
        self, source: str, error: str, now: float, retry_not_before: float | None = None
    ) -> None:
        async with self._write():
            await self._db.execute(
                """UPDATE sources SET last_poll_at = ?, last_error = ?, retry_not_before = ?,
                   consecutive_failures = consecutive_failures + 1 WHERE name = ?""",
                (now, error, retry_not_before, source),
            )

    async def record_unchanged(self, source: str, now: float) -> None:
        """A successful poll that found the source exactly as last time."""
        async with self._write():
            await self._db.execute(
                "UPDATE postings SET last_seen_at = ?"
                " WHERE source = ? AND closed_at IS NULL AND missing_polls = 0",
                (now, source),
            )
            await self._mark_success(source, now)

    async def _mark_success(self, source: str, now: float, baseline_done: bool = True) -> None:
        await self._db.execute(
            """UPDATE sources SET baseline_done = ?, last_poll_at = ?, last_success_at = ?,
               last_error = NULL, consecutive_failures = 0, retry_not_before = NULL
               WHERE name = ?""",
            (baseline_done, now, now, source),
        )

    # --- postings ------------------------------------------------------------

    async def open_posting_counts(self, source: str) -> tuple[int, int]:
        """The source's open postings seen in its last poll, and those missing from it."""
        rows = await self._rows(
            """SELECT COALESCE(SUM(missing_polls = 0), 0), COALESCE(SUM(missing_polls > 0), 0)
               FROM postings WHERE source = ? AND closed_at IS NULL""",
            (source,),
        )
        return int(rows[0][0]), int(rows[0][1])

    async def stored_postings(self, source: str) -> dict[str, StoredPosting]:
        rows = await self._rows(
            "SELECT data, content_hash, closed_at, missing_polls, partial"
            " FROM postings WHERE source = ?",
            (source,),
        )
        stored: dict[str, StoredPosting] = {}
        for row in rows:
            posting = Posting.from_json(json.loads(row["data"]))
            stored[posting.id] = StoredPosting(
                posting,
                row["content_hash"],
                row["closed_at"] is not None,
                row["missing_polls"],
                bool(row["partial"]),
            )
        return stored

    async def open_postings(self) -> list[tuple[Posting, float]]:
        """Every open posting with when it was first seen, newest first."""
        rows = await self._rows(
            "SELECT data, first_seen_at FROM postings WHERE closed_at IS NULL"
            " ORDER BY first_seen_at DESC, source, posting_id"
        )
        return [(Posting.from_json(json.loads(r["data"])), r["first_seen_at"]) for r in rows]

    async def find_postings(self, reference: str) -> list[tuple[Posting, bool]]:
        """The stored postings ``reference`` names, each with whether it is open: as
        ``SOURCE:ID`` (what alerts show), or as a bare id in any source."""
        source, _, posting_id = reference.partition(":")
        rows = await self._rows(
            """SELECT data, closed_at FROM postings
               WHERE (source = ? AND posting_id = ?) OR posting_id = ?
               ORDER BY source, posting_id""",
            (source, posting_id, reference),
        )
        return [(Posting.from_json(json.loads(r["data"])), r["closed_at"] is None) for r in rows]

    async def backfill(self, subscription_id: int, postings: Sequence[Posting], now: float) -> int:
        """Queue a "new" alert of each posting for the subscription, once: a posting it
        already has an alert about (sent or not) is skipped, so doing it again adds
        nothing. Returns how many were queued (none for a paused or deleted subscription)."""
        async with self._write():
            rows = list(
                await self._db.execute_fetchall(
                    "SELECT target FROM subscriptions WHERE id = ? AND NOT paused",
                    (subscription_id,),
                )
            )
            if not rows:
                return 0
            target = rows[0]["target"]
            queued = 0
            for posting in postings:
                if await self._scalar(
                    """SELECT COUNT(*) FROM outbox o JOIN changes c ON c.id = o.change_id
                       WHERE o.subscription_id = ? AND c.source = ? AND c.posting_id = ?""",
                    (subscription_id, posting.source, posting.id),
                ):
                    continue
                change_id = await self._insert_change(Change(ChangeKind.NEW, posting), now)
                queuing = await self._db.execute(
                    _QUEUE_ALERT,
                    (
                        idempotency_key(subscription_id, posting, change_id),
                        change_id,
                        target,
                        now,
                        now,
                        subscription_id,
                    ),
                )
                queued += queuing.rowcount
        return queued

    async def embeddings(
        self, model: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str, bytes]]:
        """The cached vectors of ``model`` for these (source, posting id) keys, as
        key → (text hash, vector); keys without one are left out."""
        found: dict[tuple[str, str], tuple[str, bytes]] = {}
        for start in range(0, len(keys), _KEYS_PER_STATEMENT):
            chunk = keys[start : start + _KEYS_PER_STATEMENT]
            rows = await self._rows(
                "SELECT source, posting_id, text_hash, vector FROM embeddings"
                " WHERE model = ? AND (source, posting_id) IN"
                f" (VALUES {', '.join(['(?, ?)'] * len(chunk))})",
                (model, *itertools.chain.from_iterable(chunk)),
            )
            found.update({(row[0], row[1]): (row[2], row[3]) for row in rows})
        return found

    async def save_embeddings(
        self, model: str, rows: Iterable[tuple[str, str, str, bytes]]
    ) -> None:
        """Cache vectors of ``model``: (source, posting id, text hash, vector) each."""
        async with self._write():
            await self._db.executemany(
                """INSERT OR REPLACE INTO embeddings
                   (source, posting_id, model, text_hash, vector) VALUES (?, ?, ?, ?, ?)""",
                [
                    (source, posting_id, model, digest, vector)
                    for source, posting_id, digest, vector in rows
                ],
            )

    async def apply_poll(
        self,
        source: str,
        result: DiffResult,
        matches: Sequence[Match],
        now: float,
        fingerprint: PollFingerprint | None = None,
        *,
        baseline_done: bool = True,
    ) -> list[int]:
        """Write one successful poll in one transaction: postings, changes, outbox.

        ``fingerprint`` identifies what the source answered (None: do not
        short-circuit the next poll); ``baseline_done`` false keeps the next poll
        a silent baseline. Alerts for subscriptions deleted or paused meanwhile
        are not queued, nor anything for a source removed meanwhile. New alerts
        queue behind the target's held ones, so a follow-up never overtakes its
        original (alerts held for a digest excepted: the worker routes a follow-up
        of theirs into the same digest). Returns the ids of the change rows written, in the order of
        ``result.changes``.
        """
        async with self._write():
            if not await self._scalar("SELECT COUNT(*) FROM sources WHERE name = ?", (source,)):
                return []  # removed (from chat) while this poll ran
            await self._write_postings(source, result, now)
            await self._assign_jobs()
            change_ids = [await self._insert_change(change, now) for change in result.changes]
            await self._db.executemany(
                _QUEUE_ALERT,
                [
                    (
                        idempotency_key(
                            m.subscription.id,
                            result.changes[m.change_index].posting,
                            change_ids[m.change_index],
                        ),
                        change_ids[m.change_index],
                        m.subscription.target,
                        now,
                        now,
                        m.subscription.id,
                    )
                    for m in matches
                ],
            )
            await self._mark_success(source, now, baseline_done)
            await self._db.execute(
                "UPDATE sources SET fingerprint = ? WHERE name = ?",
                (fingerprint.to_json() if fingerprint else None, source),
            )
        return change_ids

    async def _write_postings(self, source: str, result: DiffResult, now: float) -> None:
        db = self._db
        await db.executemany(
            """INSERT INTO postings (source, posting_id, data, content_hash,
                                     first_seen_at, last_seen_at, partial)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (source, posting_id) DO UPDATE SET
                 data = excluded.data, content_hash = excluded.content_hash,
                 last_seen_at = excluded.last_seen_at, closed_at = NULL, missing_polls = 0,
                 partial = excluded.partial""",
            [
                (
                    source,
                    p.id,
                    json.dumps(p.to_json(), ensure_ascii=False),
                    digest,
                    now,
                    now,
                    p.id in result.partial,
                )
                for p, digest in result.upserts
            ],
        )
        await db.executemany(
            "UPDATE postings SET last_seen_at = ?, missing_polls = 0"
            " WHERE source = ? AND posting_id = ?",
            [(now, source, posting_id) for posting_id in result.seen_unchanged],
        )
        await db.executemany(
            "UPDATE postings SET missing_polls = ? WHERE source = ? AND posting_id = ?",
            [(count, source, posting_id) for posting_id, count in result.missing.items()],
        )
        await db.executemany(
            "UPDATE postings SET closed_at = ?, missing_polls = 0"
            " WHERE source = ? AND posting_id = ?",
            [(now, source, posting_id) for posting_id in result.closed],
        )

    async def _insert_change(self, change: Change, now: float) -> int:
        fields = [[f.field, f.old, f.new] for f in change.fields]
        cursor = await self._db.execute(
            """INSERT INTO changes (source, posting_id, kind, fields, posting, detected_at, job)
               VALUES (?, ?, ?, ?, ?, ?,
                       (SELECT job FROM postings WHERE source = ? AND posting_id = ?))""",
            (
                change.posting.source,
                change.posting.id,
                change.kind.value,
                json.dumps(fields, ensure_ascii=False),
                json.dumps(change.posting.to_json(), ensure_ascii=False),
                now,
                change.posting.source,
                change.posting.id,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def _assign_jobs(self) -> None:
        """Put every open posting that has no job yet into the job of an open posting
        it is the same as (``bot.identity``), else into a job of its own."""
        fresh = [
            (_identity_fields(row), row["source"], row["posting_id"])
            for row in await self._db.execute_fetchall(
                f"SELECT {_IDENTITY_COLUMNS} FROM postings WHERE job IS NULL"
                " AND closed_at IS NULL ORDER BY first_seen_at, source, posting_id"
            )
        ]
        if not fresh:
            return
        companies = sorted({key for p, _, _ in fresh if (key := company_key(p.company))})
        index = JobIndex()
        for row in await self._db.execute_fetchall(
            f"""SELECT {_IDENTITY_COLUMNS}, job FROM postings
                WHERE company_key IN (SELECT value FROM json_each(?))
                  AND closed_at IS NULL AND job IS NOT NULL ORDER BY first_seen_at""",
            (json.dumps(companies),),
        ):
            index.add(_identity_fields(row), row["job"])
        assigned = []
        for posting, source, posting_id in fresh:
            found = index.find(posting)
            job = found.job if found else posting.ref  # a job is named after its first posting
            if found:
                log.info("%s/%s is job %s: %s", source, posting_id, job, found.reason)
            index.add(posting, job)
            assigned.append((job, company_key(posting.company), source, posting_id))
        await self._db.executemany(
            "UPDATE postings SET job = ?, company_key = ? WHERE source = ? AND posting_id = ?",
            assigned,
        )

    # --- subscriptions ---------------------------------------------------------

    async def add_subscription(
        self,
        target: str,
        query: str,
        notify: Iterable[ChangeKind],
        *,
        origin: str,
        created_by: str | None,
        now: float,
        delivery: str = "instant",
    ) -> Subscription:
        kinds = sorted({ChangeKind(k) for k in notify})
        async with self._write():
            cursor = await self._db.execute(
                """INSERT INTO subscriptions (target, query, notify, origin, created_by,
                                              created_at, delivery)
                   VALUES (?, ?, ?, ?, ?, ?, ?)""",
                (target, query, json.dumps(kinds), origin, created_by, now, delivery),
            )
            await self._bump_subscriptions_version()
        assert cursor.lastrowid is not None
        return Subscription(
            cursor.lastrowid, target, query, frozenset(kinds), False, origin, created_by, delivery
        )

    async def subscription(self, subscription_id: int) -> Subscription | None:
        rows = await self._rows("SELECT * FROM subscriptions WHERE id = ?", (subscription_id,))
        return _subscription(rows[0]) if rows else None

    async def remove_subscription(self, subscription_id: int) -> bool:
        """Delete a subscription and its alerts (the outbox rows go with it)."""
        async with self._write():
            cursor = await self._db.execute(
                "DELETE FROM subscriptions WHERE id = ?", (subscription_id,)
            )
            await self._bump_subscriptions_version()
        return cursor.rowcount > 0

    async def sync_config_subscriptions(
        self, declared: Iterable[tuple[str, str, Iterable[ChangeKind]]], now: float
    ) -> None:
        """Make the ``config``-origin subscriptions equal the declared (target, query, notify)."""
        wanted = {
            (target, query, json.dumps(sorted({ChangeKind(k) for k in notify})))
            for target, query, notify in declared
        }
        async with self._write():
            async with self._db.execute(
                "SELECT id, target, query, notify FROM subscriptions WHERE origin = 'config'"
            ) as cursor:
                existing = {
                    (r["target"], r["query"], r["notify"]): r["id"] for r in await cursor.fetchall()
                }
            stale = [(sub_id,) for key, sub_id in existing.items() if key not in wanted]
            await self._db.executemany("DELETE FROM subscriptions WHERE id = ?", stale)
            await self._db.executemany(
                """INSERT INTO subscriptions (target, query, notify, origin, created_at)
                   VALUES (?, ?, ?, 'config', ?)""",
                [(t, q, n, now) for t, q, n in sorted(wanted - existing.keys())],
            )
            if stale or wanted - existing.keys():
                await self._bump_subscriptions_version()

    async def subscriptions(self) -> list[Subscription]:
        rows = await self._rows("SELECT * FROM subscriptions ORDER BY id")
        return [_subscription(row) for row in rows]

    async def subscriptions_created_by(self, created_by: str) -> list[Subscription]:
        rows = await self._rows(
            "SELECT * FROM subscriptions WHERE created_by = ? ORDER BY id", (created_by,)
        )
        return [_subscription(row) for row in rows]

    async def subscriptions_for_target(self, target: str) -> list[Subscription]:
        rows = await self._rows(
            "SELECT * FROM subscriptions WHERE target = ? ORDER BY id", (target,)
        )
        return [_subscription(row) for row in rows]

    async def set_subscriptions_paused(self, subscription_ids: Iterable[int], paused: bool) -> int:
        """Pause or resume subscriptions; returns how many changed state."""
        async with self._write():
            cursor = await self._db.executemany(
                "UPDATE subscriptions SET paused = ? WHERE id = ? AND paused != ?",
                [(paused, sub_id, paused) for sub_id in subscription_ids],
            )
            if cursor.rowcount > 0:
                await self._bump_subscriptions_version()
        return max(cursor.rowcount, 0)

    async def subscriptions_version(self) -> int:
        async with self._lock:
            return await self._scalar("SELECT value FROM meta WHERE key = 'subscriptions_version'")

    async def _bump_subscriptions_version(self) -> None:
        await self._db.execute(
            "UPDATE meta SET value = value + 1 WHERE key = 'subscriptions_version'"
        )

    # --- outbox ----------------------------------------------------------------

    async def due_deliveries(
        self,
        now: float,
        limit: int = 100,
        *,
        held_for: str | None = None,
        except_targets: Collection[str] = (),
    ) -> list[OutboxItem]:
        """Pending alerts due by ``now``; with ``held_for``, only that target's held
        for a digest; none for ``except_targets`` (those being sent already)."""
        held_only = "AND o.target = ? AND o.digest" if held_for is not None else ""
        held_only += _not_in("o.target", except_targets)
        rows = await self._rows(
            f"""SELECT o.id, o.target, o.attempts, o.idempotency_key,
                      c.kind, c.fields, c.posting, c.detected_at,
                      s.id AS s_id, s.target AS s_target, s.query AS s_query,
                      s.notify AS s_notify, s.paused AS s_paused, s.origin AS s_origin,
                      s.created_by AS s_created_by, s.delivery AS s_delivery, o.digest, c.job,
                      (SELECT first.message_ref FROM outbox first
                       JOIN changes fc ON fc.id = first.change_id
                       WHERE first.subscription_id = o.subscription_id
                         AND first.target = o.target
                         AND (fc.job = c.job  -- changes from before jobs have none
                              OR (fc.source = c.source AND fc.posting_id = c.posting_id))
                         AND first.status = 'sent' AND first.message_ref IS NOT NULL
                         AND first.id < o.id
                       ORDER BY first.id LIMIT 1) AS original_ref,
                      c.kind = 'new' AND EXISTS (
                        SELECT 1 FROM outbox first JOIN changes fc ON fc.id = first.change_id
                        WHERE first.subscription_id = o.subscription_id
                          AND first.target = o.target AND fc.job = c.job
                          AND first.status = 'sent' AND first.id < o.id) AS sighting
               FROM outbox o
               JOIN changes c ON c.id = o.change_id
               JOIN subscriptions s ON s.id = o.subscription_id
               WHERE o.status = 'pending' AND o.next_attempt_at <= ? {held_only}
               ORDER BY o.next_attempt_at, o.id LIMIT ?""",
            [now, *([held_for] if held_for is not None else []), *except_targets, limit],
        )
        listings = await self._job_listings(
            {row["job"] for row in rows if row["kind"] == ChangeKind.NEW and row["job"]}
        )
        items = []
        for row in rows:
            change = Change(
                ChangeKind(row["kind"]),
                Posting.from_json(json.loads(row["posting"])),
                tuple(FieldChange(*f) for f in json.loads(row["fields"])),
            )
            also = tuple(
                p
                for p in listings.get(row["job"], ())
                if change.kind is ChangeKind.NEW
                and (p.source, p.id) != (change.posting.source, change.posting.id)
            )
            items.append(
                OutboxItem(
                    row["id"],
                    row["target"],
                    row["attempts"],
                    change,
                    _subscription(row, prefix="s_"),
                    row["detected_at"],
                    row["original_ref"],
                    row["idempotency_key"],
                    bool(row["digest"]),
                    also,
                    bool(row["sighting"]),
                )
            )
        return items

    async def _job_listings(self, jobs: Iterable[str]) -> dict[str, list[Posting]]:
        """The open postings of each job, oldest first."""
        wanted = sorted(jobs)
        if not wanted:
            return {}
        rows = await self._rows(
            """SELECT job, data FROM postings
               WHERE job IN (SELECT value FROM json_each(?)) AND closed_at IS NULL
               ORDER BY first_seen_at, source, posting_id""",
            (json.dumps(wanted),),
        )
        listings: dict[str, list[Posting]] = {}
        for row in rows:
            listings.setdefault(row["job"], []).append(Posting.from_json(json.loads(row["data"])))
        return listings

    async def open_jobs(self) -> dict[tuple[str, str], str]:
        """The job of each open posting that has one, by (source, posting id)."""
        rows = await self._rows(
            "SELECT source, posting_id, job FROM postings"
            " WHERE closed_at IS NULL AND job IS NOT NULL"
        )
        return {(row["source"], row["posting_id"]): row["job"] for row in rows}

    async def next_delivery_at(self, except_targets: Collection[str] = ()) -> float | None:
        others = _not_in("target", except_targets)
        rows = await self._rows(
            f"""SELECT MIN(at) FROM (
                 SELECT MIN(next_attempt_at) AS at FROM outbox WHERE status = 'pending' {others}
                 UNION ALL
                 SELECT MIN(next_attempt_at) FROM notices WHERE status = 'pending' {others})""",
            [*except_targets, *except_targets],
        )
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None

    async def mark_sent(
        self, item_id: int, now: float, message_ref: str | None, *, table: Queue = "outbox"
    ) -> None:
        async with self._write():
            if table == "notices":
                await self._db.execute(
                    """UPDATE notices SET status = 'sent', sent_at = ?,
                       attempts = attempts + 1, last_error = NULL WHERE id = ?""",
                    (now, item_id),
                )
                return
            await self._db.execute(
                """UPDATE outbox SET status = 'sent', sent_at = ?, message_ref = ?,
                   attempts = attempts + 1, last_error = NULL WHERE id = ?""",
                (now, message_ref, item_id),
            )

    async def mark_retry(
        self, item_id: int, next_attempt_at: float, error: str, *, table: Queue = "outbox"
    ) -> None:
        async with self._write():
            await self._db.execute(
                f"""UPDATE {_queue(table)} SET attempts = attempts + 1, next_attempt_at = ?,
                   last_error = ? WHERE id = ?""",
                (next_attempt_at, error, item_id),
            )

    async def defer_target(self, target: str, until: float, reason: str | None = None) -> None:
        """Hold every pending alert of a target until ``until`` (the platform asked to
        wait, or is down); ``reason`` is recorded on each, for ``held_targets``."""
        async with self._write():
            for table in ("outbox", "notices"):
                await self._db.execute(
                    f"""UPDATE {table} SET next_attempt_at = MAX(next_attempt_at, ?),
                       last_error = COALESCE(?, last_error)
                       WHERE target = ? AND status = 'pending'""",
                    (until, reason, target),
                )

    async def held_targets(self, now: float) -> list[HeldTarget]:
        """The targets whose pending alerts wait past ``now`` after a failure, by target."""
        rows = await self._rows(
            """SELECT target, COUNT(*) AS waiting, MIN(next_attempt_at) AS next_try,
                      MAX(last_error) AS reason
               FROM outbox WHERE status = 'pending' AND next_attempt_at > ? AND NOT digest
               GROUP BY target HAVING reason IS NOT NULL ORDER BY target""",
            (now,),
        )
        return [HeldTarget(r["target"], r["waiting"], r["next_try"], r["reason"]) for r in rows]

    async def mark_dead(self, item_id: int, error: str, *, table: Queue = "outbox") -> None:
        async with self._write():
            await self._db.execute(
                f"""UPDATE {_queue(table)} SET status = 'dead', attempts = attempts + 1,
                   last_error = ? WHERE id = ?""",
                (error, item_id),
            )

    async def due_notices(
        self, now: float, limit: int = 100, *, except_targets: Collection[str] = ()
    ) -> list[NoticeItem]:
        others = _not_in("target", except_targets)
        rows = await self._rows(
            f"""SELECT * FROM notices WHERE status = 'pending' AND next_attempt_at <= ? {others}
               ORDER BY next_attempt_at, id LIMIT ?""",
            [now, *except_targets, limit],
        )
        return [
            NoticeItem(
                r["id"],
                r["target"],
                r["attempts"],
                Notice(
                    r["target"],
                    r["title"],
                    r["detail"],
                    r["created_at"],
                    r["source"],
                    bool(r["recovered"]),
                    r["idempotency_key"],
                ),
            )
            for r in rows
        ]

    async def prune(self, closed_before: float) -> PruneCounts:
        """Forget postings closed before ``closed_before`` with their changes and
        sent alerts, and dead letters and settled notices older than that. A posting
        whose job is still open elsewhere stays: its alerts are that job's thread."""
        long_closed = """postings.closed_at IS NOT NULL AND postings.closed_at < :cutoff
            AND (postings.job IS NULL OR NOT EXISTS (
                SELECT 1 FROM postings listing
                WHERE listing.job = postings.job AND listing.closed_at IS NULL))"""
        doomed = f"(SELECT source, posting_id FROM postings WHERE {long_closed})"
        async with self._write():
            # A sent alert of an open posting stays: follow-ups thread under it.
            alerts = await self._db.execute(
                f"""DELETE FROM outbox WHERE (status = 'dead' AND created_at < :cutoff)
                    OR (status = 'sent' AND change_id IN (
                        SELECT id FROM changes WHERE (source, posting_id) IN {doomed}))""",
                {"cutoff": closed_before},
            )
            changes = await self._db.execute(
                f"""DELETE FROM changes WHERE (source, posting_id) IN {doomed}
                    AND id NOT IN (SELECT change_id FROM outbox)""",
                {"cutoff": closed_before},
            )
            postings = await self._db.execute(
                f"""DELETE FROM postings WHERE {long_closed}
                   AND NOT EXISTS (SELECT 1 FROM changes c
                                   WHERE c.source = postings.source
                                     AND c.posting_id = postings.posting_id)""",
                {"cutoff": closed_before},
            )
            notices = await self._db.execute(
                "DELETE FROM notices WHERE status != 'pending' AND created_at < :cutoff",
                {"cutoff": closed_before},
            )
        return PruneCounts(postings.rowcount, changes.rowcount, alerts.rowcount, notices.rowcount)

    async def outbox_counts(self) -> OutboxCounts:
        rows = await self._rows("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        counts = {row[0]: row[1] for row in rows}
        return OutboxCounts(counts.get(PENDING, 0), counts.get(SENT, 0), counts.get(DEAD, 0))

    async def recent_dead_letters(self, limit: int = 5) -> list[DeadLetter]:
        rows = await self._rows(
            """SELECT id, target, last_error, created_at FROM outbox
               WHERE status = 'dead' ORDER BY id DESC LIMIT ?""",
            (limit,),
        )
        return [DeadLetter(r["id"], r["target"], r["last_error"], r["created_at"]) for r in rows]

    # --- delivery modes (bot/delivery_modes.py) --------------------------------

    async def set_delivery(self, subscription_id: int, delivery: str, now: float) -> bool:
        """Set a subscription's delivery mode; the alerts it holds are routed afresh."""
        async with self._write():
            cursor = await self._db.execute(
                "UPDATE subscriptions SET delivery = ? WHERE id = ?", (delivery, subscription_id)
            )
            await self._db.execute(
                """UPDATE outbox SET digest = 0, next_attempt_at = ?
                   WHERE status = 'pending' AND digest AND subscription_id = ?""",
                (now, subscription_id),
            )
        return cursor.rowcount > 0

    async def delivery_settings(self, owners: Iterable[str]) -> dict[str, DeliverySettings]:
        """The settings of those owners that have any."""
        wanted = sorted(set(owners))
        if not wanted:
            return {}
        rows = await self._rows(
            f"SELECT * FROM delivery_settings WHERE owner IN ({', '.join('?' * len(wanted))})",
            wanted,
        )
        return {r["owner"]: DeliverySettings(r["owner"], r["timezone"], r["quiet"]) for r in rows}

    async def set_timezone(self, owner: str, timezone: str | None, now: float) -> None:
        await self._set_delivery_setting(owner, "timezone", timezone, now)

    async def set_quiet_hours(self, owner: str, quiet: str | None, now: float) -> None:
        await self._set_delivery_setting(owner, "quiet", quiet, now)

    async def _set_delivery_setting(
        self, owner: str, column: Literal["timezone", "quiet"], value: str | None, now: float
    ) -> None:
        """Record one setting; the alerts held for the subscriptions that follow this
        owner are routed afresh (``delivery_modes.settings_owner`` says which)."""
        if column not in ("timezone", "quiet"):
            raise ValueError(column)
        async with self._write():
            await self._db.execute(
                f"""INSERT INTO delivery_settings (owner, {column}) VALUES (?, ?)
                    ON CONFLICT (owner) DO UPDATE SET {column} = excluded.{column}""",
                (owner, value),
            )
            await self._db.execute(
                """UPDATE outbox SET digest = 0, next_attempt_at = ?
                   WHERE status = 'pending' AND digest AND subscription_id IN (
                     SELECT id FROM subscriptions
                     WHERE CASE WHEN origin = 'chat' AND created_by IS NOT NULL
                                THEN created_by ELSE target END = ?)""",
                (now, owner),
            )

    async def hold(self, item_ids: Iterable[int], until: float) -> None:
        """Hold pending alerts for a digest at ``until``."""
        async with self._write():
            await self._db.executemany(
                """UPDATE outbox SET digest = 1, next_attempt_at = ?
                   WHERE id = ? AND status = 'pending'""",
                [(until, item_id) for item_id in item_ids],
            )

    async def mark_digest_sent(self, item_ids: Iterable[int], now: float) -> None:
        """Mark the alerts of one digest message sent, all in one transaction."""
        async with self._write():
            await self._db.executemany(
                """UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1,
                   last_error = NULL WHERE id = ?""",
                [(now, item_id) for item_id in item_ids],
            )

    async def held_for_digests(self, now: float) -> HeldDigests:
        """The alerts held past ``now`` for digests or the end of quiet hours."""
        rows = await self._rows(
            """SELECT COUNT(*), MIN(next_attempt_at) FROM outbox
               WHERE status = 'pending' AND digest AND next_attempt_at > ?""",
            (now,),
        )
        return HeldDigests(rows[0][0], rows[0][1])


@dataclass(frozen=True, slots=True)
class DeliverySettings:
    """A chat user's or a target's time zone and quiet hours, as stored (None: not set)."""

    owner: str
    timezone: str | None
    quiet: str | None


@dataclass(frozen=True, slots=True)
class HeldDigests:
    count: int
    next_at: float | None


@dataclass(frozen=True, slots=True)
class BackupReport:
    pages: int
    size: int  # bytes


def backup_database(database: Path, destination: Path) -> BackupReport:
    """Copy ``database`` to ``destination`` with SQLite's online backup: a consistent
    snapshot even while ``careerbot run`` writes to it. The copy is checked with
    ``PRAGMA integrity_check`` and then renamed into place, so ``destination`` is
    either the previous file or a complete, verified backup. Blocking: run it in a thread."""
    source = _read_only_uri(database)
    if source is None:
        raise StoreError(f"no database at {str(database)!r}")
    if destination.exists() and destination.resolve() == database.resolve():
        raise StoreError("the backup must not overwrite the database itself")
    partial = destination.with_name(f".{destination.name}.partial")
    try:
        partial.unlink(missing_ok=True)
        with (
            closing(sqlite3.connect(source, uri=True)) as disk,
            closing(sqlite3.connect(partial)) as copy,
        ):
            disk.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            verdict = [row[0] for row in copy.execute("PRAGMA integrity_check")]
            pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
        if verdict != ["ok"]:
            raise StoreError(f"the copy failed its integrity check: {'; '.join(verdict[:3])}")
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        partial.replace(destination)
    except (OSError, sqlite3.Error) as err:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot back up to {str(destination)!r}: {err}") from None
    except StoreError:
        partial.unlink(missing_ok=True)
        raise
    return BackupReport(pages, destination.stat().st_size)


def _not_in(column: str, values: Collection[str]) -> str:
    """``AND column NOT IN (?, …)`` with a placeholder per value, or nothing."""
    return f"AND {column} NOT IN ({', '.join('?' * len(values))})" if values else ""


def _queue(table: Queue) -> str:
    """The table name, checked: it is put into SQL text."""
    if table not in ("outbox", "notices"):
        raise ValueError(table)
    return table


def _read_only_uri(path: Path) -> str | None:
    return f"{path.resolve().as_uri()}?mode=ro" if path.exists() else None


@asynccontextmanager
async def _database_errors() -> AsyncIterator[None]:
    """A failing database (read-only, full disk, corrupt file) is one clear error."""
    try:
        yield
    except sqlite3.Error as err:
        raise StoreError(f"database error: {err}") from None


# What bot.identity compares, read without decoding whole postings (descriptions can be long).
_IDENTITY_COLUMNS = ", ".join(
    [
        "source",
        "posting_id",
        *(
            f"json_extract(data, '$.{name}') AS {name}"
            for name in ("title", "company", "team", "employment_type", "url", "apply_url")
        ),
    ]
)


def _identity_fields(row: aiosqlite.Row) -> Posting:
    """A posting with only what ``bot.identity`` compares, from ``_IDENTITY_COLUMNS``."""
    return Posting(
        row["source"],
        row["posting_id"],
        row["title"] or "",
        company=row["company"],
        team=row["team"],
        employment_type=row["employment_type"],
        url=row["url"],
        apply_url=row["apply_url"],
    )


def _subscription(row: aiosqlite.Row, prefix: str = "") -> Subscription:
    return Subscription(
        row[prefix + "id"],
        row[prefix + "target"],
        row[prefix + "query"],
        frozenset(ChangeKind(k) for k in json.loads(row[prefix + "notify"])),
        bool(row[prefix + "paused"]),
        row[prefix + "origin"],
        row[prefix + "created_by"],
        row[prefix + "delivery"],
    )
