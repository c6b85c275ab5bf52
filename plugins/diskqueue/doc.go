// Package diskqueue is the disk_queue buffer: Benthos's buffer over a bbolt
// file, so that a post is acknowledged only once its events are on disk.
//
//   - buffer_disk_queue.go: the config spec and the Benthos face (WriteBatch
//     stores a post's events, ReadBatch leases one event at a time);
//   - queue.go: the queue over the bbolt file: the committer that group-commits
//     puts and deletes, leases, retries with backoff, probing while deliveries
//     fail, damaged records moved aside;
//   - record.go: a record's layout on disk (checksum, stored-at, metadata,
//     body);
//   - dedupe.go: the ids of stored events, for removing repeats: blocks of
//     16-byte ids on disk, one per commit;
//   - idtable.go: the same ids in memory, an open-addressing table outside
//     the Go heap;
//   - mapping_linux.go, mapping_other.go: memory outside the heap, and letting
//     go of the queue file's mapped pages.
package diskqueue
