"""Embedded durable queue: one SQLite file (WAL) in the data directory.

- `schema.py`: the chunks table and its statements. A publish writes one row ("chunk") per
  stream holding all of that request's events for the stream, so a 500-event batch is one
  insert, not 500. A partly settled chunk records which events are done (a bitmap, one small
  update per settle call); it is deleted once every event in it is settled.
- `writer.py`: all SQL of one process runs on one writer thread that commits whatever is
  pending as one transaction (group commit): many concurrent ingest requests share one fsync.
- `consumer.py`: read cursors, the buffer and the leases of the consuming process. Any number
  of processes may publish; exactly one consumes (a lock file enforces it), so handing a message
  out costs no write. Fresh chunks carry `available_at = 0` and are read in `seq` order: SQLite
  serialises writers and `seq` is assigned inside the write transaction, so commit order equals
  `seq` order even across processes, and a cursor over `seq` never skips a row. A retried event
  is re-inserted by the consumer as its own row with `available_at` in the future, read through
  a second cursor over `(available_at, seq)` on the consumer's own never-decreasing clock. A
  pulled batch is leased for `lease_seconds` (renewed by `extend`, given back by `release`); an
  expired lease hands the batch out again. After a crash the cursors start over, so everything
  not settled is handed out again (at-least-once).
- `dedup.py`: best-effort in-memory dedup by message id.
- `wake.py`: publishers in other processes wake the consumer through a Unix datagram socket
  next to the file (a missed wake-up costs at most the consumer's poll interval).
"""

from eventrelay.queue.sqlite.lock import QueueLocked, describe_holder, lock_holder
from eventrelay.queue.sqlite.queue import SqliteQueue

__all__ = ["QueueLocked", "SqliteQueue", "describe_holder", "lock_holder"]
