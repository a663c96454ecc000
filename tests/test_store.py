from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from bot.diff import diff
from bot.errors import StoreError
from bot.models import ChangeKind, Posting
from bot.store import MIGRATIONS, ChatSource, Match, PruneCounts, Store, backup_database

P1 = Posting("src", "1", "Research Scientist", company="Acme")
P2 = Posting("src", "2", "ML Engineer", company="Acme")


async def test_fresh_database_is_migrated_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    store = await Store.open(path)
    assert await store.schema_version() == len(MIGRATIONS)
    await store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    reopened = await Store.open(path)  # migrating again is a no-op
    assert await reopened.schema_version() == len(MIGRATIONS)
    await reopened.close()


async def test_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_migrations (version) VALUES (99)")
    with pytest.raises(StoreError, match="newer than this careerbot"):
        await Store.open(path)


async def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot use database"):
        await Store.open(path)


async def _subscribe(store: Store) -> Match:
    sub = await store.add_subscription(
        "console", "scientist", [ChangeKind.NEW], origin="cli", created_by=None, now=1.0
    )
    return Match(0, sub)


async def test_apply_poll_writes_postings_changes_and_outbox(store: Store) -> None:
    await store.apply_poll("src", diff({}, [P1], baseline=True, close_after=2), [], now=10.0)
    result = diff(await store.stored_postings("src"), [P1, P2], baseline=False, close_after=2)
    match = await _subscribe(store)
    change_ids = await store.apply_poll("src", result, [match], now=20.0)
    assert len(change_ids) == 1
    assert set(await store.stored_postings("src")) == {"1", "2"}
    (item,) = await store.due_deliveries(now=20.0)
    assert item.change.kind is ChangeKind.NEW and item.change.posting == P2
    assert item.subscription.id == match.subscription.id
    (state,) = await store.source_states()
    assert state.baseline_done and state.open_postings == 2 and state.last_success_at == 20.0


async def test_a_failing_poll_transaction_leaves_nothing_behind(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    match = await _subscribe(store)
    result = diff({}, [P1, P2], baseline=False, close_after=2)

    async def broken(*args: object) -> int:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_insert_change", broken)
    with pytest.raises(StoreError, match="database error: disk I/O error"):
        await store.apply_poll("src", result, [match], now=5.0)
    assert await store.stored_postings("src") == {}
    assert await store.due_deliveries(now=5.0) == []
    (state,) = await store.source_states()
    assert not state.baseline_done


async def test_outbox_key_is_idempotent(store: Store) -> None:
    match = await _subscribe(store)
    result = diff({}, [P2], baseline=False, close_after=2)
    await store.apply_poll("src", result, [match, match], now=1.0)
    assert len(await store.due_deliveries(now=1.0)) == 1


async def test_outbox_transitions(store: Store) -> None:
    match = await _subscribe(store)
    await store.apply_poll("src", diff({}, [P1], baseline=False, close_after=2), [match], now=1.0)
    (item,) = await store.due_deliveries(now=1.0)
    await store.mark_retry(item.id, 50.0, "HTTP 503")
    assert await store.due_deliveries(now=49.0) == []
    assert await store.next_delivery_at() == 50.0
    (again,) = await store.due_deliveries(now=50.0)
    assert again.attempts == 1
    await store.mark_sent(again.id, 51.0, "msg-1")
    assert await store.due_deliveries(now=1e9) == []
    counts = await store.outbox_counts()
    assert (counts.pending, counts.sent, counts.dead) == (0, 1, 0)


async def test_unsubscribe_drops_undelivered_alerts(store: Store) -> None:
    match = await _subscribe(store)
    await store.apply_poll("src", diff({}, [P1], baseline=False, close_after=2), [match], now=1.0)
    assert await store.remove_subscription(match.subscription.id)
    assert not await store.remove_subscription(match.subscription.id)
    assert (await store.outbox_counts()).pending == 0


async def test_config_subscriptions_sync(store: Store) -> None:
    version = await store.subscriptions_version()
    declared = [("console", "a", [ChangeKind.NEW]), ("console", "b", [ChangeKind.NEW])]
    await store.sync_config_subscriptions(declared, now=1.0)
    first = await store.subscriptions()
    await store.sync_config_subscriptions(declared, now=2.0)
    assert await store.subscriptions() == first, "unchanged config keeps ids"
    await store.sync_config_subscriptions(declared[:1], now=3.0)
    assert [s.query for s in await store.subscriptions()] == ["a"]
    assert await store.subscriptions_version() > version


async def test_alert_for_a_subscription_deleted_before_saving_is_not_queued(store: Store) -> None:
    match = await _subscribe(store)
    result = diff({}, [P1], baseline=False, close_after=2)
    await store.remove_subscription(match.subscription.id)  # e.g. /jobs unsubscribe mid-poll
    await store.apply_poll("src", result, [match], now=1.0)
    assert await store.due_deliveries(now=1.0) == []
    assert await store.next_delivery_at() is None, "nothing left that a worker would wait for"


async def test_changing_a_sources_url_starts_a_new_baseline(store: Store) -> None:
    await store.apply_poll("src", diff({}, [P1], baseline=True, close_after=2), [], now=1.0)
    await store.register_sources([("src", "greenhouse", "https://example.test/src")])
    assert (await store.source_state("src")).baseline_done  # type: ignore[union-attr]
    await store.register_sources([("src", "greenhouse", "https://example.test/other")])
    assert not (await store.source_state("src")).baseline_done  # type: ignore[union-attr]


async def test_snapshot_leaves_the_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    disk = await Store.open(path)
    await disk.add_subscription(
        "console", "x", [ChangeKind.NEW], origin="cli", created_by=None, now=1
    )
    await disk.close()
    snapshot = await Store.open_snapshot(path)
    (sub,) = await snapshot.subscriptions()
    await snapshot.remove_subscription(sub.id)
    await snapshot.close()
    reopened = await Store.open(path)
    assert [s.query for s in await reopened.subscriptions()] == ["x"]
    await reopened.close()


async def test_new_alerts_queue_behind_a_held_target(store: Store) -> None:
    match = await _subscribe(store)
    await store.apply_poll("src", diff({}, [P1], baseline=False, close_after=2), [match], now=1.0)
    await store.defer_target("console", until=500.0)  # the platform asked us to wait
    stored = await store.stored_postings("src")
    edited = diff(stored, [replace(P1, title="Staff Scientist")], baseline=False, close_after=2)
    await store.apply_poll("src", edited, [match], now=2.0)
    assert await store.due_deliveries(now=499.0) == []
    first, follow_up = await store.due_deliveries(now=500.0)
    assert (first.change.kind, follow_up.change.kind) == (ChangeKind.NEW, ChangeKind.CHANGED)


async def test_a_poll_of_a_source_removed_meanwhile_writes_nothing(store: Store) -> None:
    await store.add_chat_source(
        ChatSource("gone", "greenhouse", "https://example.test/gone", 300.0, True, "slack:U1", 1.0)
    )
    await store.remove_chat_source("gone")
    result = diff({}, [replace(P1, source="gone")], baseline=True, close_after=2)
    assert await store.apply_poll("gone", result, [], now=2.0) == []
    assert await store.stored_postings("gone") == {}


async def test_a_failing_migration_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "db.sqlite3"
    await (await Store.open(path)).close()
    broken = ("CREATE TABLE half_done (x INTEGER)", "THIS IS NOT SQL")
    monkeypatch.setattr("bot.store.MIGRATIONS", (*MIGRATIONS, broken))
    with pytest.raises(StoreError):
        await Store.open(path)
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        version = db.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
    assert "half_done" not in tables, "a migration applies whole or not at all"
    assert version == len(MIGRATIONS)


async def test_backup_is_a_consistent_verified_copy_taken_while_writing(tmp_path: Path) -> None:
    path, copy = tmp_path / "db.sqlite3", tmp_path / "backups" / "copy.sqlite3"
    copy.parent.mkdir()
    store = await Store.open(path)
    await store.register_sources([("src", "greenhouse", "file:x")])
    writing = asyncio.Event()

    async def keep_writing() -> None:
        # Each transaction swaps one pair of subscriptions for the next pair.
        for n in range(200):
            await store.sync_config_subscriptions(
                [("console", f"first{n}", [ChangeKind.NEW]), ("console", f"second{n}", [])], n
            )
            writing.set()

    writer = asyncio.create_task(keep_writing())
    await writing.wait()
    report = await asyncio.to_thread(backup_database, path, copy)
    await writer
    await store.close()
    assert report.pages > 0 and report.size == copy.stat().st_size
    assert not list(copy.parent.glob(".*partial")), "no temporary file is left behind"
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "one file, no -wal"
    reopened = await Store.open(copy)
    assert await reopened.schema_version() == len(MIGRATIONS)
    queries = sorted(s.query for s in await reopened.subscriptions())
    assert len(queries) == 2 and queries[0][5:] == queries[1][6:], f"a torn copy: {queries}"
    await reopened.close()


async def test_backup_refuses_a_missing_database_and_overwriting_itself(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with pytest.raises(StoreError, match="no database at"):
        backup_database(path, tmp_path / "copy")
    await (await Store.open(path)).close()
    with pytest.raises(StoreError, match="must not overwrite the database itself"):
        backup_database(path, tmp_path / "." / "db.sqlite3")
    with pytest.raises(StoreError, match="cannot back up to"):
        backup_database(path, tmp_path / "missing-dir" / "copy")


async def test_prune_forgets_long_closed_postings_but_never_an_undelivered_alert(
    store: Store,
) -> None:
    match = await _subscribe(store)
    p3 = Posting("src", "3", "Scientist", company="Acme")
    opened = diff({}, [P1, P2, p3], baseline=False, close_after=1)
    every = [Match(index, match.subscription) for index in range(3)]
    await store.apply_poll("src", opened, every, now=10.0)
    alerts = {item.change.posting.id: item for item in await store.due_deliveries(now=10.0)}
    await store.mark_sent(alerts["1"].id, 11.0, None)
    await store.mark_dead(alerts["3"].id, "gone")
    closing = diff(await store.stored_postings("src"), [p3], baseline=False, close_after=1)
    await store.apply_poll("src", closing, [], now=20.0)

    assert await store.prune(closed_before=5.0) == PruneCounts(0, 0, 0, 0)
    counts = await store.prune(closed_before=30.0)
    assert set(await store.stored_postings("src")) == {"2", "3"}, (
        "1 closed long ago goes; 2 still has an alert to send; 3 is open"
    )
    assert counts.postings == 1 and counts.alerts == 2  # 1's sent alert, 3's dead letter
    assert [item.change.posting.id for item in await store.due_deliveries(now=1e9)] == ["2"]
    assert (await store.outbox_counts()).dead == 0
