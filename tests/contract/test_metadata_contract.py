"""One contract, every place the rules run: the embedded server of local mode, Redis, Redis Cluster."""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hera_sessions.backends.metadata.base import MetadataStore, record_to_field
from hera_sessions.backends.metadata.embedded import open_embedded
from hera_sessions.backends.metadata.redis import RedisMetadataStore
from hera_sessions.core import rules
from hera_sessions.core.errors import FileExistsConflictError, GoneError, NotFoundError, QuotaExceededError
from hera_sessions.core.keys import new_session_id
from hera_sessions.core.models import EventKind, FileRecord, Outcome, Reservation
from hera_sessions.core.rules import CheckedEvent, Limits

LIMITS = Limits(max_files=3, max_bytes=1000, upload_max=500)
TTL = 3600
#: The scripts of the release before the session counters (as deployed), run beside the new ones.
BEFORE_COUNTERS = Path(__file__).with_name("rules_before_counters")
#: core/rules/state.lua's RECOUNT_AFTER: counters older than this are recounted.
RECOUNT_AFTER = 300


def created(sid: str, path: str, seq: str | None, size: int = 100, **kw: object) -> CheckedEvent:
    return CheckedEvent(sid, path, EventKind.CREATED, seq, size=size, type_guess="image/png", **kw)  # type: ignore[arg-type]


def removed(sid: str, path: str, seq: str | None) -> CheckedEvent:
    return CheckedEvent(sid, path, EventKind.REMOVED, seq)


class MetadataContract:
    @pytest.fixture
    def store(self) -> Iterator[MetadataStore]:
        raise NotImplementedError

    @pytest.fixture
    def sid(self, store: MetadataStore) -> str:
        session_id = new_session_id()
        store.create_session(session_id, time.time(), TTL)
        return session_id

    def apply(self, store: MetadataStore, *events: CheckedEvent) -> list[Outcome]:
        return [o for o, _ in store.apply_events(events, LIMITS, time.time(), TTL)]

    # -- sessions ----------------------------------------------------------------------------------------
    def test_a_new_session_is_live_with_its_ttl(self, store: MetadataStore, sid: str) -> None:
        info = store.get_session(sid)
        assert info is not None
        assert info.expires_at == pytest.approx(time.time() + TTL, abs=5)
        assert store.list_files(sid) == []

    def test_an_unknown_session_is_not_found(self, store: MetadataStore) -> None:
        assert store.get_session(new_session_id()) is None
        with pytest.raises(NotFoundError):
            store.list_files(new_session_id())

    def test_a_session_expires_after_its_ttl(self, store: MetadataStore) -> None:
        sid = new_session_id()
        store.create_session(sid, time.time(), 1)
        time.sleep(2.1)
        assert store.get_session(sid) is None

    def test_erase_forgets_everything_and_stays_erased(self, store: MetadataStore, sid: str) -> None:
        store.put_meta(sid, "user_profile", b'{"age":30}', time.time(), TTL)
        self.apply(store, created(sid, "photos/a.png", "01"))
        store.erase(sid, 60)
        assert store.is_erased(sid)
        assert store.get_session(sid) is None
        with pytest.raises(GoneError):
            store.list_files(sid)
        with pytest.raises(GoneError):
            store.get_meta(sid, "user_profile")
        assert self.apply(store, created(sid, "photos/b.png", "02")) == [Outcome.ERASED]
        with pytest.raises(GoneError):
            store.reserve_upload(sid, Reservation("photos/c.png", 10, "image/png", time.time() + 60), LIMITS, 0, TTL)

    # -- documents ---------------------------------------------------------------------------------------
    def test_documents_round_trip_and_delete(self, store: MetadataStore, sid: str) -> None:
        big = (
            '{"turns":[' + ",".join(f'{{"text":"turn {i} of the conversation"}}' for i in range(300)) + "]}"
        ).encode()
        store.put_meta(sid, "conversation", big, time.time(), TTL)
        store.put_meta(sid, "user_profile", b'{"age":30}', time.time(), TTL)
        assert store.get_meta(sid, "conversation") == big
        assert store.get_meta(sid, "user_profile") == b'{"age":30}'
        assert store.delete_meta(sid, "user_profile", time.time(), TTL) is True
        assert store.delete_meta(sid, "user_profile", time.time(), TTL) is False
        assert store.get_meta(sid, "user_profile") is None

    def test_documents_need_a_live_session(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError):
            store.put_meta(new_session_id(), "x", b"{}", time.time(), TTL)

    def test_a_write_refreshes_the_ttl(self, store: MetadataStore) -> None:
        sid = new_session_id()
        store.create_session(sid, time.time(), 2)
        store.put_meta(sid, "x", b"{}", time.time(), TTL)
        time.sleep(2.2)
        assert store.get_session(sid) is not None
        assert store.get_meta(sid, "x") == b"{}"

    # -- quotas ------------------------------------------------------------------------------------------
    def reserve(
        self, store: MetadataStore, sid: str, path: str, size: int, ttl: float = 60, overwrite: bool = False
    ) -> None:
        reservation = Reservation(path, size, "image/png", time.time() + ttl, overwrite=overwrite)
        store.reserve_upload(sid, reservation, LIMITS, time.time(), TTL)

    def test_reservations_count_against_the_quota(self, store: MetadataStore, sid: str) -> None:
        for i in range(3):
            self.reserve(store, sid, f"p/{i}.png", 10)
        with pytest.raises(QuotaExceededError):
            self.reserve(store, sid, "p/3.png", 10)

    def test_asking_again_for_a_path_replaces_its_ticket(self, store: MetadataStore, sid: str) -> None:
        for _ in range(5):
            self.reserve(store, sid, "p/0.png", 400)
        self.reserve(store, sid, "p/1.png", 500)
        assert len(store.reservations(sid)) == 2
        with pytest.raises(QuotaExceededError):
            self.reserve(store, sid, "p/2.png", 101)  # 900 + 101 bytes

    def test_expired_tickets_release_their_quota(self, store: MetadataStore, sid: str) -> None:
        for i in range(3):
            self.reserve(store, sid, f"p/{i}.png", 10, ttl=1)
        time.sleep(1.1)
        self.reserve(store, sid, "p/3.png", 10)
        assert [r.path for r in store.reservations(sid)] == ["p/3.png"]

    def test_a_recorded_file_and_its_new_ticket_count_once(self, store: MetadataStore, sid: str) -> None:
        self.reserve(store, sid, "p/0.png", 100)
        assert self.apply(store, created(sid, "p/0.png", "01", size=100)) == [Outcome.RECORDED]
        self.reserve(store, sid, "p/0.png", 900, overwrite=True)  # overwriting: the 900 replaces the 100
        self.reserve(store, sid, "p/1.png", 100)
        with pytest.raises(QuotaExceededError):
            self.reserve(store, sid, "p/2.png", 1)

    # -- no silent overwrite, names, checksums (issue 11) ------------------------------------------------
    def test_a_recorded_path_refuses_a_ticket_that_may_not_overwrite(self, store: MetadataStore, sid: str) -> None:
        # GIVEN a recorded photos/image.jpg
        self.reserve(store, sid, "photos/image.jpg", 100)
        self.reserve(store, sid, "photos/image.jpg", 100)  # the same file's pending ticket: the client may retry
        assert self.apply(store, created(sid, "photos/image.jpg", "01")) == [Outcome.RECORDED]

        # WHEN a second photo asks for the same path without overwrite THEN 409 file_exists, nothing reserved
        with pytest.raises(FileExistsConflictError) as refused:
            self.reserve(store, sid, "photos/image.jpg", 50)
        assert (refused.value.status, refused.value.code) == (409, "file_exists")
        assert store.reservations(sid) == []

        # ... with overwrite it gets its ticket; and once the file is deleted (a tombstone) the path is free again
        self.reserve(store, sid, "photos/image.jpg", 50, overwrite=True)
        [ticket] = store.reservations(sid)
        assert ticket.overwrite is True
        store.release_upload(sid, "photos/image.jpg")
        assert self.apply(store, removed(sid, "photos/image.jpg", "02")) == [Outcome.REMOVED]
        self.reserve(store, sid, "photos/image.jpg", 50)
        assert [r.overwrite for r in store.reservations(sid)] == [False]

    def test_a_pending_ticket_for_another_file_refuses_a_ticket_that_may_not_overwrite(
        self, store: MetadataStore, sid: str
    ) -> None:
        def ticket(size: int, name: str, md5: str | None = None, overwrite: bool = False, ttl: int = 60) -> None:
            reservation = Reservation(
                "p/image.jpg", size, "image/jpeg", time.time() + ttl, name=name, content_md5=md5, overwrite=overwrite
            )
            store.reserve_upload(sid, reservation, LIMITS, time.time(), TTL)

        md5 = "1B2M2Y8AsgTpgAmY7PhCfg=="
        ticket(100, "image.jpg", md5)
        ticket(100, "image.jpg", md5)  # the same file again: a retry
        for other in ((101, "image.jpg", md5), (100, "IMAGE.jpg", md5), (100, "image.jpg", None)):
            with pytest.raises(FileExistsConflictError):
                ticket(*other)
        ticket(50, "other.jpg", overwrite=True)  # asked to overwrite: it replaces the pending ticket
        [held] = store.reservations(sid)
        assert (held.size, held.name, held.overwrite) == (50, "other.jpg", True)
        with pytest.raises(FileExistsConflictError):
            ticket(100, "image.jpg")
        ticket(50, "other.jpg", ttl=1)  # the same file (overwrite does not make it another)
        time.sleep(1.1)
        ticket(100, "image.jpg")  # an expired ticket holds nothing

    def test_the_ticket_gives_the_record_its_name_and_md5(self, store: MetadataStore, sid: str) -> None:
        name, md5 = "Фото 1 \u2013 café 😀 日本.jpg", "1B2M2Y8AsgTpgAmY7PhCfg=="
        reservation = Reservation("photos/a.jpg", 100, "image/jpeg", int(time.time()) + 60, name=name, content_md5=md5)
        store.reserve_upload(sid, reservation, LIMITS, time.time(), TTL)
        assert store.reservations(sid) == [reservation]

        event = CheckedEvent(sid, "photos/a.jpg", EventKind.CREATED, "01", size=100, content_type="image/jpeg")
        assert self.apply(store, event) == [Outcome.RECORDED]

        record = store.get_file(sid, "photos/a.jpg")
        assert record is not None
        assert (record.name, record.content_md5) == (name, md5)
        assert store.list_files(sid) == [record]
        assert record.to_json()["name"] == name
        assert record.to_json()["content_md5"] == md5

    @pytest.mark.parametrize(
        ("etag", "size", "kept"), [("e-2", 100, True), ("other-2", 100, False), ("e-2", 99, False)]
    )
    def test_the_same_object_announced_again_keeps_its_name_and_md5(
        self, store: MetadataStore, sid: str, etag: str, size: int, kept: bool
    ) -> None:
        # GIVEN a multipart upload recorded from its ticket (S3 then announces the same object a second time)
        name, md5 = "Panorama.png", "1B2M2Y8AsgTpgAmY7PhCfg=="
        reservation = Reservation("photos/p.png", 100, "image/png", int(time.time()) + 60, name=name, content_md5=md5)
        store.reserve_upload(sid, reservation, LIMITS, time.time(), TTL)
        assert self.apply(store, created(sid, "photos/p.png", "01", etag="e-2")) == [Outcome.RECORDED]
        # WHEN a later event names the same object (same ETag and size), or another one
        assert self.apply(store, created(sid, "photos/p.png", "02", size=size, etag=etag)) == [Outcome.RECORDED]
        # THEN the same object keeps its name and MD5; other bytes have neither (no ticket asked for them)
        record = store.get_file(sid, "photos/p.png")
        assert record is not None
        assert (record.name, record.content_md5) == ((name, md5) if kept else (None, None))

    @pytest.mark.parametrize(
        ("etag", "outcome"),
        [
            ("d41d8cd98f00b204e9800998ecf8427e", Outcome.RECORDED),  # the declared MD5
            ("0123456789abcdef0123456789abcdef", Outcome.REJECTED),  # a plain MD5 of other bytes
            ("0123456789abcdef0123456789abcdef-2", Outcome.RECORDED),  # multipart: says nothing of the MD5
            ("0x8DC2F5A1B2C3D4E", Outcome.RECORDED),  # Azure's
            (None, Outcome.RECORDED),
        ],
    )
    def test_an_etag_that_is_a_plain_md5_must_be_the_declared_one(
        self, store: MetadataStore, sid: str, etag: str | None, outcome: Outcome
    ) -> None:
        reservation = Reservation("a.png", 100, "image/png", time.time() + 60, content_md5="1B2M2Y8AsgTpgAmY7PhCfg==")
        store.reserve_upload(sid, reservation, LIMITS, time.time(), TTL)
        assert self.apply(store, created(sid, "a.png", "01", etag=etag)) == [outcome]

    def test_a_file_recorded_without_a_ticket_has_no_name_or_md5(self, store: MetadataStore, sid: str) -> None:
        assert self.apply(store, created(sid, "photos/b.png", "01")) == [Outcome.RECORDED]
        record = store.get_file(sid, "photos/b.png")
        assert record is not None
        assert (record.name, record.content_md5) == (None, None)
        assert {"name": None, "content_md5": None}.items() <= record.to_json().items()

    def test_reconcile_keeps_name_and_md5(self, store: MetadataStore, sid: str) -> None:
        record = FileRecord(
            "a.png",
            10,
            "image/png",
            "e",
            "1970-01-01T00:00:01Z",
            "01",
            name="ä.png",
            content_md5="AAAAAAAAAAAAAAAAAAAAAA==",
        )
        store.replace_files(sid, [record], time.time(), TTL)
        assert store.list_files(sid) == [record]

    # -- events ------------------------------------------------------------------------------------------
    def test_created_then_removed(self, store: MetadataStore, sid: str) -> None:
        self.reserve(store, sid, "photos/a.png", 100)
        assert self.apply(store, created(sid, "photos/a.png", "0A", etag="abc")) == [Outcome.RECORDED]
        [record] = store.list_files(sid)
        assert (record.path, record.size, record.content_type, record.etag) == ("photos/a.png", 100, "image/png", "abc")
        assert store.reservations(sid) == []
        assert self.apply(store, removed(sid, "photos/a.png", "0B")) == [Outcome.REMOVED]
        assert store.list_files(sid) == []

    def test_duplicates_are_idempotent(self, store: MetadataStore, sid: str) -> None:
        event = created(sid, "photos/a.png", "0A")
        assert self.apply(store, event, event) == [Outcome.RECORDED, Outcome.DUPLICATE]
        assert self.apply(store, event) == [Outcome.DUPLICATE]

    def test_a_late_created_never_resurrects_a_deleted_file(self, store: MetadataStore, sid: str) -> None:
        assert self.apply(store, removed(sid, "photos/a.png", "0B"), created(sid, "photos/a.png", "0A")) == [
            Outcome.REMOVED,
            Outcome.STALE,
        ]
        assert store.list_files(sid) == []

    def test_a_late_removed_never_removes_a_newer_upload(self, store: MetadataStore, sid: str) -> None:
        out = self.apply(store, created(sid, "photos/a.png", "0C", size=7), removed(sid, "photos/a.png", "0B"))
        assert out == [Outcome.RECORDED, Outcome.STALE]
        assert [r.size for r in store.list_files(sid)] == [7]

    def test_sequencers_compare_by_s3s_padding_rule(self, store: MetadataStore, sid: str) -> None:
        # "0A" padded to "0A00" is greater than "09FF": the longer is not automatically later
        self.apply(store, created(sid, "photos/a.png", "09FF", size=1))
        assert self.apply(store, created(sid, "photos/a.png", "0A", size=2)) == [Outcome.RECORDED]
        assert self.apply(store, created(sid, "photos/a.png", "0A00")) == [Outcome.DUPLICATE]

    def later(self, store: MetadataStore, a: str, b: str) -> int:
        """``later`` of state.lua, run where the store runs its scripts."""
        assert isinstance(store, RedisMetadataStore)
        compare = store.client.register_script(rules.source("state") + "\nreturn later(ARGV[1], ARGV[2])")
        return int(compare(args=[a, b]))  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [
            ("0055AED6DCD90281E5", "0055AED6DCD90281E5", 0),
            ("0055AED6DCD90281E6", "0055AED6DCD90281E5", 1),
            ("0A", "09FF", 1),  # different widths: right-padded, 0A00 > 09FF
            ("1", "0FFFFFFFFFFFFFFFFFFFFFFF", 1),  # the longer is not automatically later
            ("0A01", "0A", 1),
            ("0A", "0A00", 0),  # equal after padding
            ("1", "1000000000000000000000000000000", 0),
            ("00000000000000000005", "00000000000000000010", -1),
            ("9", "A", -1),  # hex digits above 9 (the server's locale must not matter)
            ("FFFFFFFFFFFFFFFFFF", "FFFFFFFFFFFFFFFFFE", 1),  # 72 bits
            ("10000000000000000", "0FFFFFFFFFFFFFFFF", 1),  # 2**64 against 2**64 - 1
            ("000000000001000000000000", "000000000000FFFFFFFFFFFF", 1),  # at a 12-digit chunk's edge
            ("00000000000000000000000000026D6E0000000000A1B2C4", "00000000000000000000000000026D6E0000000000A1B2C3", 1),
            ("18446744073709551617", "18446744073709551616", 1),  # decimal GCS generations beyond 64 bits
            ("17643949341234561", "17643949341234570", -1),
        ],
    )
    def test_later_is_s3s_rule(self, store: MetadataStore, a: str, b: str, expected: int) -> None:
        assert self.later(store, a, b) == expected
        assert self.later(store, b, a) == -expected

    def test_later_orders_equal_widths_as_their_values(self, store: MetadataStore) -> None:
        rng = random.Random(11)
        for _ in range(200):
            width = rng.randrange(1, 40)
            x, y = rng.randrange(16**width), rng.randrange(16**width)
            expected = (x > y) - (x < y)
            assert self.later(store, f"{x:0{width}X}", f"{y:0{width}X}") == expected, (x, y, width)

    def test_events_without_a_sequencer_apply_in_arrival_order(self, store: MetadataStore, sid: str) -> None:
        assert self.apply(store, created(sid, "photos/a.png", None), removed(sid, "photos/a.png", None)) == [
            Outcome.RECORDED,
            Outcome.REMOVED,
        ]
        assert store.list_files(sid) == []

    def test_an_object_larger_than_declared_is_rejected(self, store: MetadataStore, sid: str) -> None:
        self.reserve(store, sid, "photos/a.png", 50)
        [(outcome, reason)] = store.apply_events(
            [created(sid, "photos/a.png", "01", size=51)], LIMITS, time.time(), TTL
        )
        assert outcome is Outcome.REJECTED
        assert "51 bytes" in reason
        assert store.list_files(sid) == []

    def test_a_type_that_differs_from_the_ticket_is_rejected(self, store: MetadataStore, sid: str) -> None:
        self.reserve(store, sid, "photos/a.png", 50)
        out = self.apply(store, created(sid, "photos/a.png", "01", size=5, content_type="image/jpeg"))
        assert out == [Outcome.REJECTED]

    def test_an_object_without_a_ticket_takes_its_type_from_the_extension(self, store: MetadataStore, sid: str) -> None:
        assert self.apply(store, created(sid, "photos/a.png", "01", size=5)) == [Outcome.RECORDED]
        assert store.list_files(sid)[0].content_type == "image/png"
        no_type = CheckedEvent(sid, "photos/b.bin", EventKind.CREATED, "01", size=5)
        assert self.apply(store, no_type) == [Outcome.REJECTED]

    def test_a_stateless_problem_rejects(self, store: MetadataStore, sid: str) -> None:
        assert self.apply(store, created(sid, "photos/a.png", "01", problem="it is empty")) == [Outcome.REJECTED]

    def test_recording_rechecks_the_quota(self, store: MetadataStore, sid: str) -> None:
        out = self.apply(store, *(created(sid, f"p/{i}.png", "01") for i in range(4)))
        assert out == [Outcome.RECORDED] * 3 + [Outcome.REJECTED]

    def test_unknown_sessions_are_left_alone(self, store: MetadataStore) -> None:
        assert self.apply(store, created(new_session_id(), "photos/a.png", "01")) == [Outcome.UNKNOWN_SESSION]

    def test_a_batch_spans_sessions_in_order(self, store: MetadataStore) -> None:
        sids = [new_session_id() for _ in range(5)]
        for s in sids:
            store.create_session(s, time.time(), TTL)
        events = [created(s, f"p/{i}.png", f"0{i}", size=1) for i in range(2) for s in sids]
        assert self.apply(store, *events) == [Outcome.RECORDED] * 10
        assert all(len(store.list_files(s)) == 2 for s in sids)

    def test_forget_and_replace_files(self, store: MetadataStore, sid: str) -> None:
        self.apply(store, created(sid, "p/a.png", "01"), created(sid, "p/b.png", "01"))
        forgotten = store.forget_file(sid, "p/a.png", time.time(), TTL)
        assert forgotten is not None and forgotten.path == "p/a.png"
        assert store.forget_file(sid, "p/a.png", time.time(), TTL) is None
        store.replace_files(sid, [FileRecord("p/c.png", 3, "image/png", "e", "1970-01-01T00:00:01Z")], time.time(), TTL)
        assert [r.path for r in store.list_files(sid)] == ["p/c.png"]
        assert store.get_file(sid, "p/c.png") == FileRecord("p/c.png", 3, "image/png", "e", "1970-01-01T00:00:01Z")

    def test_a_deleted_file_stays_deleted_when_its_created_event_comes_again(
        self, store: MetadataStore, sid: str
    ) -> None:
        upload = created(sid, "p/a.png", "0A")
        self.apply(store, upload)
        store.forget_file(sid, "p/a.png", time.time(), TTL)  # DELETE /files/p/a.png
        assert self.apply(store, upload) == [Outcome.DUPLICATE]  # SQS delivers the old "created" again
        assert self.apply(store, removed(sid, "p/a.png", "0B")) == [Outcome.REMOVED]
        assert self.apply(store, upload) == [Outcome.STALE]
        assert store.list_files(sid) == []
        assert self.apply(store, created(sid, "p/a.png", "0C")) == [Outcome.RECORDED]  # a new upload wins

    def test_the_removal_event_before_forget_keeps_its_tombstone(self, store: MetadataStore, sid: str) -> None:
        upload = created(sid, "p/a.png", "0A")
        self.apply(store, upload, removed(sid, "p/a.png", "0B"))
        assert store.forget_file(sid, "p/a.png", time.time(), TTL) is None
        assert self.apply(store, upload) == [Outcome.STALE]
        assert store.list_files(sid) == []

    def test_the_oldest_tombstones_are_pruned_beyond_the_bound(self, store: MetadataStore, sid: str) -> None:
        # GIVEN more deletions than the bound (100 for this session)
        paths = [f"p/{i:03}.png" for i in range(150)]
        self.apply(store, *(removed(sid, p, "0B") for p in paths))
        # WHEN an upload is reserved (the API's write path prunes)
        self.reserve(store, sid, "p/new.png", 1)
        # THEN the 50 oldest tombstones are gone (a late "created" for them records), the newest remain (stale)
        assert self.apply(store, created(sid, paths[0], "0A", size=1)) == [Outcome.RECORDED]
        assert self.apply(store, created(sid, paths[49], "0A", size=1)) == [Outcome.RECORDED]
        assert self.apply(store, created(sid, paths[50], "0A", size=1)) == [Outcome.STALE]
        assert self.apply(store, created(sid, paths[-1], "0A", size=1)) == [Outcome.STALE]

    def test_every_order_of_create_and_delete_ends_the_same(self, store: MetadataStore) -> None:
        """Duplicates and every order of a key's events: the greatest sequencer decides."""
        history = [
            created("", "p/a.png", "01", size=1),
            removed("", "p/a.png", "02"),
            created("", "p/a.png", "03", size=3),
            removed("", "p/a.png", "04"),
            created("", "p/a.png", "05", size=5),
        ]
        for order in itertools.islice(itertools.permutations(range(5)), 0, None, 7):
            sid = new_session_id()
            store.create_session(sid, time.time(), TTL)
            events = [CheckedEvent(**{**_fields(history[i]), "session_id": sid}) for i in order]
            self.apply(store, *events, *events[:2])  # with duplicates
            assert [r.size for r in store.list_files(sid)] == [5], order

    # -- the counters (held files and bytes, tombstones) and the scripts of the release before them ---------
    def hash_of(self, store: MetadataStore, sid: str) -> dict[str, Any]:
        assert isinstance(store, RedisMetadataStore)
        flat = store.client.hgetall(f"session:{{{sid}}}")
        return {k.decode(): json.loads(v) for k, v in flat.items() if k != b"@c"}

    def assert_counters_right(self, store: MetadataStore, sid: str) -> None:
        """The counters the last script left are what one pass over the hash finds (at their clock)."""
        fields = self.hash_of(store, sid)
        counters = fields.pop("#")
        recs = {k[2:]: v for k, v in fields.items() if k.startswith("f:")}
        ticks = {k[2:]: v for k, v in fields.items() if k.startswith("t:")}
        held = []
        for path in recs.keys() | ticks.keys():
            r, t = recs.get(path), ticks.get(path)
            if t and t["x"] > counters["k"]:
                held.append(t["s"])
            elif r and not r.get("d"):
                held.append(r["s"])
        tombstones = sum(1 for r in recs.values() if r.get("d"))
        assert (counters["f"], counters["b"], counters["d"]) == (len(held), sum(held), tombstones), fields

    def before_counters(self, store: MetadataStore, name: str) -> Any:
        """One script of the release before the counters, ready to run on the store's server."""
        assert isinstance(store, RedisMetadataStore)
        parts = {"apply": ("prelude", "state", "apply"), "reserve": ("prelude", "state", "reserve")}
        text = "\n".join((BEFORE_COUNTERS / f"{part}.lua").read_text() for part in parts.get(name, ("prelude", name)))
        return store.client.register_script(text)

    def old_apply(self, store: MetadataStore, sid: str, now: float, *events: dict[str, Any]) -> list[str]:
        """The old apply.lua: one JSON argument per event."""
        head = [int(now), TTL, LIMITS.max_files, LIMITS.max_bytes, LIMITS.upload_max]
        wire = [json.dumps(e) for e in events]
        answers = self.before_counters(store, "apply")(keys=RedisMetadataStore._keys(sid), args=[*head, *wire])
        return [a.decode().partition("|")[0] for a in answers]

    def old_reserve(self, store: MetadataStore, sid: str, now: float, path: str, size: int) -> list[bytes]:
        ticket = json.dumps({"s": size, "t": "image/png", "x": int(now) + 60})
        args = [int(now), TTL, LIMITS.max_files, LIMITS.max_bytes, path, ticket, LIMITS.max_tombstones]
        return list(self.before_counters(store, "reserve")(keys=RedisMetadataStore._keys(sid), args=args))

    def test_every_script_keeps_the_counters_right(self, store: MetadataStore, sid: str) -> None:
        """Random reservations (live, expired, overwriting), uploads, removals, API deletes and releases."""
        rng = random.Random(5)
        limits = Limits(max_files=4, max_bytes=1000, upload_max=400)
        paths = [f"p/{i}.png" for i in range(6)]
        sequence = itertools.count(16)
        start = time.time()
        for step in range(120):
            now, path, op = start + step, rng.choice(paths), rng.randrange(5)
            with contextlib.suppress(QuotaExceededError, FileExistsConflictError):
                if op == 0:
                    ttl = rng.choice((-1, 3, 60))  # already expired, expiring a few steps on, live
                    size, overwrite = rng.randrange(1, 300), rng.random() < 0.5
                    reservation = Reservation(path, size, "image/png", now + ttl, overwrite=overwrite)
                    store.reserve_upload(sid, reservation, limits, now, TTL)
                elif op in (1, 2):
                    event = created(sid, path, f"{next(sequence):X}", size=rng.randrange(1, 400))
                    store.apply_events([event], limits, now, TTL)
                elif op == 3:
                    seq = rng.choice((None, f"{next(sequence):X}"))
                    store.apply_events([removed(sid, path, seq)], limits, now, TTL)
                elif rng.random() < 0.5:
                    store.forget_file(sid, path, now, TTL)
                else:
                    store.release_upload(sid, path)
            self.assert_counters_right(store, sid)

    def test_a_file_the_old_scripts_recorded_counts_against_the_quota(self, store: MetadataStore, sid: str) -> None:
        # GIVEN two files recorded by the new scripts and a third by the old apply.lua (no counters)
        now = time.time()
        self.apply(store, created(sid, "p/0.png", "01"), created(sid, "p/1.png", "01"))
        assert self.old_apply(store, sid, now, {"k": "c", "p": "p/2.png", "q": "01", "s": 100, "g": "image/png"}) == [
            "recorded"
        ]
        # WHEN the new scripts reserve a fourth THEN the quota (3 files) counts the old script's file too
        with pytest.raises(QuotaExceededError):
            self.reserve(store, sid, "p/3.png", 10)
        self.assert_counters_right(store, sid)
        # ... and a ticket the old reserve.lua wrote, and its release by the old write.lua, are counted
        store.forget_file(sid, "p/2.png", now, TTL)
        assert self.old_reserve(store, sid, now, "p/3.png", 10) == [b"ok"]
        assert self.apply(store, created(sid, "p/4.png", "01")) == [Outcome.REJECTED]
        self.assert_counters_right(store, sid)
        self.before_counters(store, "write")(keys=RedisMetadataStore._keys(sid), args=[0, "release", "t:p/3.png"])
        assert self.apply(store, created(sid, "p/4.png", "01")) == [Outcome.RECORDED]
        self.assert_counters_right(store, sid)

    def test_what_the_old_scripts_change_in_place_is_recounted_in_time(self, store: MetadataStore, sid: str) -> None:
        # GIVEN 100 + 400 bytes, the 100 overwritten in place by the old apply.lua with 500 (the field count stays)
        now = time.time()
        self.apply(store, created(sid, "p/0.png", "01", size=100), created(sid, "p/1.png", "01", size=400))
        assert self.old_apply(store, sid, now, {"k": "c", "p": "p/0.png", "q": "02", "s": 500, "g": "image/png"}) == [
            "recorded"
        ]
        # WHEN the new scripts run once RECOUNT_AFTER has passed THEN they count the 500 bytes
        later = now + RECOUNT_AFTER + 1
        [(outcome, reason)] = store.apply_events([created(sid, "p/2.png", "01", size=200)], LIMITS, later, TTL)
        assert (outcome, reason) == (Outcome.REJECTED, "the session would hold 1100 bytes (at most 1000)")
        self.assert_counters_right(store, sid)

    def test_the_old_reconcile_and_tombstones_are_recounted(self, store: MetadataStore, sid: str) -> None:
        now = time.time()
        self.apply(store, created(sid, "p/0.png", "01"), created(sid, "p/1.png", "01"))
        # the old write.lua's forget: a tombstone in place (counted as a file until the counters are recounted)
        forget = [TTL, "forget", "f:p/0.png", int(now)]
        self.before_counters(store, "write")(keys=RedisMetadataStore._keys(sid), args=forget)
        later = now + RECOUNT_AFTER + 1
        store.reserve_upload(sid, Reservation("p/2.png", 10, "image/png", later + 60), LIMITS, later, TTL)
        self.assert_counters_right(store, sid)
        # the old replace_files.lua (reconcile) changes the field count
        records = [FileRecord(f"p/{i}.png", 10, "image/png", "e", "1970-01-01T00:00:01Z") for i in range(5, 8)]
        args = [TTL] + [x for r in records for x in ("f:" + r.path, record_to_field(r))]
        self.before_counters(store, "replace_files")(keys=RedisMetadataStore._keys(sid), args=args)
        with pytest.raises(QuotaExceededError):  # 3 records and a ticket: 4 files
            store.reserve_upload(sid, Reservation("p/3.png", 10, "image/png", later + 60), LIMITS, later, TTL)
        self.assert_counters_right(store, sid)

    def test_the_old_scripts_read_what_the_new_ones_write(self, store: MetadataStore, sid: str) -> None:
        # the counters field is neither a record nor a ticket for the old scripts and readers
        self.reserve(store, sid, "p/0.png", 100)
        self.apply(store, created(sid, "p/0.png", "01", size=100))
        assert self.old_apply(store, sid, time.time(), {"k": "c", "p": "p/0.png", "q": "01", "s": 100}) == ["duplicate"]
        assert [r.path for r in store.list_files(sid)] == ["p/0.png"]
        assert store.reservations(sid) == []


def _fields(event: CheckedEvent) -> dict[str, object]:
    return {f: getattr(event, f) for f in CheckedEvent.__dataclass_fields__}


@pytest.fixture(scope="module")
def embedded_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MetadataStore]:
    """Local mode's store: the server it starts itself under SESSIONS_DIR (one for the module)."""
    store = open_embedded(tmp_path_factory.mktemp("sessions"))
    yield store
    store.close()


class TestEmbeddedMetadata(MetadataContract):
    @pytest.fixture
    def store(self, embedded_store: MetadataStore) -> MetadataStore:
        return embedded_store


class TestRedisMetadata(MetadataContract):
    @pytest.fixture
    def store(self, redis_server) -> Iterator[MetadataStore]:  # type: ignore[no-untyped-def]
        store = RedisMetadataStore.from_url(redis_server.url)
        yield store
        store.close()


class TestRedisClusterMetadata(MetadataContract):
    @pytest.fixture
    def store(self, redis_cluster) -> Iterator[MetadataStore]:  # type: ignore[no-untyped-def]
        store = RedisMetadataStore.from_url(f"redis://127.0.0.1:{redis_cluster[0].port}/0", cluster=True)
        yield store
        store.close()
