"""What the workers acknowledged lately (queue/nats_acked.py): bounded, shared by announcement,
never confused across consumers or with a process's own announcements."""

from __future__ import annotations

from array import array

from eventrelay.queue.nats_acked import RecentlyAcked


def test_an_announcement_tells_another_process_and_not_the_sender_again() -> None:
    sender, other = RecentlyAcked(), RecentlyAcked()
    recorded, wire = sender.pack([7, 8, 2**40])
    sender.add("er-a", recorded)
    other.receive("er-a", wire)
    assert all(other.seen("er-a", seq) for seq in (7, 8, 2**40))
    assert not other.seen("er-b", 7)  # per consumer: the log's sequences are shared
    assert not other.seen("er-a", 9)
    size = sender._size
    sender.receive("er-a", wire)  # its own, back from the server: recorded already
    assert sender._size == size


def test_what_is_not_an_announcement_is_ignored() -> None:
    acked = RecentlyAcked()
    acked.receive("er-a", b"")
    acked.receive("er-a", b"12345678abc")  # not whole u64s
    assert acked._size == 0


def test_only_the_newest_are_kept() -> None:
    acked = RecentlyAcked(limit=10)
    acked.add("er-a", array("Q", range(1, 7)))
    acked.add("er-b", array("Q", range(1, 7)))  # 12 > 10: the oldest batch goes
    assert not acked.seen("er-a", 1)
    assert acked.seen("er-b", 6)
    assert "er-a" not in acked._seqs
    acked.add("er-b", array("Q", range(7, 12)))
    assert acked.seen("er-b", 11) and not acked.seen("er-b", 1)
    assert acked._size <= 10
