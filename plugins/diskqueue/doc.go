// Package diskqueue is the disk_queue buffer: Benthos's buffer over a bbolt
// file, so that a post is acknowledged only once its events are on disk.
//
//   - buffer_disk_queue.go: the config spec and the Benthos face (WriteBatch
//     stores a post's events, or the post whole with explode; ReadBatch
//     leases one event at a time);
//   - queue.go: the queue: opening it, puts, damaged records moved aside;
//   - lease.go: handing out events one at a time, and settling them:
//     deleted, or retried with backoff;
//   - readmemory.go: the bound in bytes on the records the read path
//     holds (read_memory_bytes), how its parts share it, and the cache
//     type of its two caches;
//   - readahead.go: records read before their turn, and the reads for
//     delivery;
//   - window.go: the delivery window, narrowing with failures and probing in
//     an outage;
//   - retries.go: failed events waiting for their retry, by when it is due,
//     and their records kept (up to a bound) for it;
//   - runs.go: what waits for delivery, as runs of sequence numbers;
//   - fates.go: each event's fate (stored, repeat, failed, delivered) told to
//     the inspector;
//   - file.go: opening the bbolt file, checking it, and reading what it
//     holds at start;
//   - commit.go: the committer, the one goroutine that writes to the file:
//     group commits of puts, deletes and moves, sweeps of forgotten ids;
//     commit_share.go: which puts a commit takes (small ones never wait
//     behind many big ones);
//   - record.go: an event record's layout on disk (checksum, stored-at,
//     metadata, body);
//   - post_record.go: a post record's (with explode set: the whole post,
//     its events compact, split when read);
//   - posts.go: post records while their events are out: handed out one by
//     one, a damaged event set aside;
//   - marks.go: which events of a post are settled, kept in the file so
//     that a restart does not send them again;
//   - rewrites.go: a failed event of a post written as a record of its
//     own, so that the post can be settled without it;
//   - dedupe.go: the ids of stored events, for removing repeats: blocks of
//     16-byte ids on disk, one per commit;
//   - idtable.go: the same ids in memory, an open-addressing table outside
//     the Go heap;
//   - file_stats.go, salvage.go: what a queue file holds, and a damaged
//     file's events read back page by page without bbolt;
//   - mapping_linux.go, mapping_other.go: memory outside the heap, letting
//     go of the queue file's mapped pages, and a file mapped for salvage.
package diskqueue
