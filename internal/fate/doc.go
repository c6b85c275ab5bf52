// Package fate follows events from the receiver to Meiro Events, so that the
// inspector can say of each event of a post whether it was delivered, is
// waiting, was dead-lettered or was a repeat, and show the state of the
// pipeline as a whole.
//
// Benthos builds each component on its own and gives them no way to reach
// each other, so the stages report to one Book per process, Default: the
// disk_queue (stored, repeated, failed, delivered, and what waits), the
// dead_letter output (dead-lettered) and the netcore_webhook input
// (received). The Book is off, and every report a no-op, unless the inspector
// turns it on.
//
//   - book.go: the Book and the fate of each event, kept for a bounded
//     number of the latest events;
//   - pipeline.go: counts per minute for the last hour, and what waits in
//     the queue.
package fate
