// Package diskqueue is the disk_queue buffer: a first-in, first-out queue of
// records in a bbolt file, under Benthos's buffer interface, so that a post
// is acknowledged to its sender only once its events are on disk, and each
// event is deleted only once its delivery is acknowledged.
//
// # Records
//
// A record is one value of the file's events bucket, keyed by a sequence
// number that only grows. It is either an event record (one message: its
// metadata and body) or, with explode set, a post record (a whole Netcore
// post: its metadata and its panels of events, split into events only when
// read). Every record carries a crc32c; a post record carries one more per
// event, so that damage to one event's bytes costs that event alone. Beside
// the events bucket the file holds: damaged (records and events set aside,
// never delivered), settled (for a post some of whose events are settled:
// a bitmap of them, with its own checksum) and dedupe (the ids of the events
// stored within the dedupe window, a block per commit).
//
// An event is settled when its delivery is acknowledged (delivered, or
// kept as a dead letter by the output), when it is found to repeat one
// stored before, when it is damaged and set aside, or, for an event of a
// post whose delivery failed, when it is written as an event record of its
// own (from then on it is retried from that record, and the post no longer
// waits for it). A record is deleted once all its events are settled.
//
// # Durability
//
// One goroutine, the committer, makes every write, in bbolt transactions
// that are fsync'd before they count. Whatever piles up while a commit is
// under way (new posts, deletes, marks, rewrites) goes into the next one
// together: group commit, with no fixed delay on the path a sender waits on.
//
// A put is answered (and the sender given its 200) only after the
// transaction holding its records is on disk, or refused with the error that
// kept it off. A put whose input stopped waiting before its commit began
// (its acknowledgement timeout passed) is dropped, never written; once a
// commit takes a put, its input waits for that commit's outcome. The folders
// holding the file are fsync'd at open, before any put, so that a power cut
// cannot take the file's name away.
//
// A crash, kill -9 or power cut at any step loses nothing that was
// acknowledged, and delivers some events again (at least once):
//
//   - before a put's commit ends: nothing of it is in the file, and it was
//     not acknowledged; the sender sends it again;
//   - after: its records are in the file and are delivered after the start;
//   - with events out for delivery: they are not settled in the file and
//     are delivered again;
//   - after a delivery is acknowledged but before its delete (or its
//     post's mark) is committed: it is delivered again. Deletes wait up to
//     100 ms for a commit to ride with, as losing them costs only this;
//   - after a failed event of a post is written as a record of its own: the
//     record and the post's mark for it are in one commit, so the event is
//     delivered from one of the two, never both nor neither;
//   - marks that do not match their checksum settle nothing (their post's
//     events are sent again rather than lost).
//
// A record whose checksum fails when read is moved aside to the damaged
// bucket, logged and counted, and the rest goes on. A file bbolt cannot
// read stops the start with an error naming it (check_on_start reads every
// page then); `queue salvage` reads such a file's events back page by page.
//
// # Bounds
//
// Every bound on memory is in bytes:
//
//   - max_bytes and max_events bound what the file holds, counted at put
//     (before the commit); past them a put is refused at once, and
//     netcore_webhook answers 503 with Retry-After. The file does not shrink;
//     its free pages are reused;
//   - the posts being received and stored are bounded upstream, by
//     netcore_webhook's ingest budget (max_body_bytes_in_flight); a commit
//     takes big posts only up to 8 MiB of them, so that a small post never
//     waits behind many big ones;
//   - read_memory_bytes bounds the records the read path holds: records
//     read ahead, records of failed events kept for their retry (at most a
//     quarter of it), the posts whose events are handed out, and the events
//     out for delivery. Past it no further record is read; one record may
//     always go while nothing is held, and a post bigger than the budget
//     goes one event at a time (readMemory has the exact bound);
//   - the delivery window bounds the events out at once (up to 1024),
//     narrowing with failures and probing one at a time in an outage;
//   - dedupe_max_ids bounds the ids kept, in a table outside the Go heap;
//     a sustained rate above it per window shortens the effective window.
//
// # Parts
//
// The queue is four parts, each a type that owns its state, and a
// coordinator:
//
//   - recordStore: the file, the committer and the writes waiting for it,
//     under a mutex of its own. Other parts ask for writes (put,
//     deleteRecord, rewrite, marksChanged…) and read records (read); what a
//     commit did comes back through storeOwner, called by the committer
//     with the store's mutex let go;
//   - schedule: what goes out next, in memory with no I/O: the records
//     ready, the retries by due time, the delivery window. Time is passed
//     in, never read, so that a test can ask it at any moment;
//   - readMemory: the read_memory_bytes budget and its two caches (records
//     read ahead, records kept for a retry);
//   - openPost and postCursors: a post record's events handed out one by
//     one, its settled marks, and the posts open in the order they were;
//   - queue: the coordinator between these and diskQueue, Benthos's buffer.
//     Its mutex guards the schedule, the read memory, the cursors and the
//     counts; it may call the store while holding it, never the reverse.
//
// They are types in one package rather than packages of their own: they
// share the record layouts and the post model, which would otherwise be
// exported for the package alone, and the lock order above is one rule to
// keep in one place. What each may touch of another is its methods.
//
// Files: the part of each type is in its file (store.go, commit.go,
// schedule.go, readmemory.go, cursor.go, queue.go); retain.go keeps settled
// records in the file for retain_after_ack (a journal in front of a store
// that acknowledges before its fsync), and leaves the marks of events
// acknowledged meanwhile out of the file, so that a restart sends them
// again, and republish.go hands them out again while it runs; salvage.go
// and file_stats.go read a file without opening a queue.
package diskqueue
