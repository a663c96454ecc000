"""SQLite state: the only module with SQL.

One connection (aiosqlite), WAL, versioned migrations, and a lock so that every
read and write transaction of this process runs one at a time on it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from bot.conditional import PollFingerprint
from bot.diff import DiffResult, StoredPosting
from bot.errors import StoreError
from bot.models import Change, ChangeKind, FieldChange, Posting, Subscription

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
)

PENDING, SENT, DEAD = "pending", "sent", "dead"

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
    # The platform's id of the first alert this subscription got for the posting, when
    # that one was sent: follow-ups (changed, closed…) go into its thread.
    original_ref: str | None = None
    key: str | None = None  # the idempotency key


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

    async def _scalar(self, sql: str, params: Sequence[Any] = ()) -> int:
        async with self._db.execute(sql, params) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    async def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with self._lock, _database_errors(), self._db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

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
            )
            for row in rows
        ]

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
        original. Returns the ids of the change rows written, in the order of
        ``result.changes``.
        """
        async with self._write():
            if not await self._scalar("SELECT COUNT(*) FROM sources WHERE name = ?", (source,)):
                return []  # removed (from chat) while this poll ran
            await self._write_postings(source, result, now)
            change_ids = [await self._insert_change(change, now) for change in result.changes]
            await self._db.executemany(
                """INSERT INTO outbox (idempotency_key, subscription_id, change_id, target,
                                       next_attempt_at, created_at)
                   SELECT ?1, s.id, ?2, ?3,
                          MAX(?4, COALESCE((SELECT MAX(held.next_attempt_at) FROM outbox held
                                            WHERE held.target = ?3
                                              AND held.status = 'pending'), ?4)),
                          ?5
                   FROM subscriptions s WHERE s.id = ?6 AND NOT s.paused
                   ON CONFLICT (idempotency_key) DO NOTHING""",
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
            """INSERT INTO changes (source, posting_id, kind, fields, posting, detected_at)
               VALUES (?, ?, ?, ?, ?, ?)""",
            (
                change.posting.source,
                change.posting.id,
                change.kind.value,
                json.dumps(fields, ensure_ascii=False),
                json.dumps(change.posting.to_json(), ensure_ascii=False),
                now,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

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
    ) -> Subscription:
        kinds = sorted({ChangeKind(k) for k in notify})
        async with self._write():
            cursor = await self._db.execute(
                """INSERT INTO subscriptions (target, query, notify, origin, created_by, created_at)
                   VALUES (?, ?, ?, ?, ?, ?)""",
                (target, query, json.dumps(kinds), origin, created_by, now),
            )
            await self._bump_subscriptions_version()
        assert cursor.lastrowid is not None
        return Subscription(
            cursor.lastrowid, target, query, frozenset(kinds), False, origin, created_by
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

    async def due_deliveries(self, now: float, limit: int = 100) -> list[OutboxItem]:
        rows = await self._rows(
            """SELECT o.id, o.target, o.attempts, o.idempotency_key,
                      c.kind, c.fields, c.posting, c.detected_at,
                      s.id AS s_id, s.target AS s_target, s.query AS s_query,
                      s.notify AS s_notify, s.paused AS s_paused, s.origin AS s_origin,
                      s.created_by AS s_created_by,
                      (SELECT first.message_ref FROM outbox first
                       JOIN changes fc ON fc.id = first.change_id
                       WHERE first.subscription_id = o.subscription_id
                         AND first.target = o.target
                         AND fc.source = c.source AND fc.posting_id = c.posting_id
                         AND first.status = 'sent' AND first.message_ref IS NOT NULL
                         AND first.id < o.id
                       ORDER BY first.id LIMIT 1) AS original_ref
               FROM outbox o
               JOIN changes c ON c.id = o.change_id
               JOIN subscriptions s ON s.id = o.subscription_id
               WHERE o.status = 'pending' AND o.next_attempt_at <= ?
               ORDER BY o.next_attempt_at, o.id LIMIT ?""",
            (now, limit),
        )
        items = []
        for row in rows:
            change = Change(
                ChangeKind(row["kind"]),
                Posting.from_json(json.loads(row["posting"])),
                tuple(FieldChange(*f) for f in json.loads(row["fields"])),
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
                )
            )
        return items

    async def next_delivery_at(self) -> float | None:
        rows = await self._rows("SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'")
        value = rows[0][0] if rows else None
        return float(value) if value is not None else None

    async def mark_sent(self, item_id: int, now: float, message_ref: str | None) -> None:
        async with self._write():
            await self._db.execute(
                """UPDATE outbox SET status = 'sent', sent_at = ?, message_ref = ?,
                   attempts = attempts + 1, last_error = NULL WHERE id = ?""",
                (now, message_ref, item_id),
            )

    async def mark_retry(self, item_id: int, next_attempt_at: float, error: str) -> None:
        async with self._write():
            await self._db.execute(
                """UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?,
                   last_error = ? WHERE id = ?""",
                (next_attempt_at, error, item_id),
            )

    async def defer_target(self, target: str, until: float, reason: str | None = None) -> None:
        """Hold every pending alert of a target until ``until`` (the platform asked to
        wait, or is down); ``reason`` is recorded on each, for ``held_targets``."""
        async with self._write():
            await self._db.execute(
                """UPDATE outbox SET next_attempt_at = MAX(next_attempt_at, ?),
                   last_error = COALESCE(?, last_error)
                   WHERE target = ? AND status = 'pending'""",
                (until, reason, target),
            )

    async def held_targets(self, now: float) -> list[HeldTarget]:
        """The targets whose pending alerts wait past ``now`` after a failure, by target."""
        rows = await self._rows(
            """SELECT target, COUNT(*) AS waiting, MIN(next_attempt_at) AS next_try,
                      MAX(last_error) AS reason
               FROM outbox WHERE status = 'pending' AND next_attempt_at > ?
               GROUP BY target HAVING reason IS NOT NULL ORDER BY target""",
            (now,),
        )
        return [HeldTarget(r["target"], r["waiting"], r["next_try"], r["reason"]) for r in rows]

    async def mark_dead(self, item_id: int, error: str) -> None:
        async with self._write():
            await self._db.execute(
                """UPDATE outbox SET status = 'dead', attempts = attempts + 1,
                   last_error = ? WHERE id = ?""",
                (error, item_id),
            )

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


def _read_only_uri(path: Path) -> str | None:
    return f"{path.resolve().as_uri()}?mode=ro" if path.exists() else None


@asynccontextmanager
async def _database_errors() -> AsyncIterator[None]:
    """A failing database (read-only, full disk, corrupt file) is one clear error."""
    try:
        yield
    except sqlite3.Error as err:
        raise StoreError(f"database error: {err}") from None


def _subscription(row: aiosqlite.Row, prefix: str = "") -> Subscription:
    return Subscription(
        row[prefix + "id"],
        row[prefix + "target"],
        row[prefix + "query"],
        frozenset(ChangeKind(k) for k in json.loads(row[prefix + "notify"])),
        bool(row[prefix + "paused"]),
        row[prefix + "origin"],
        row[prefix + "created_by"],
    )
