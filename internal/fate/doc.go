// Package fate follows events from the receiver to each destination, so
// that the inspector can say of each event of a post whether it was
// delivered, is waiting, was dead-lettered or was a repeat, and show the
// state of the pipeline as a whole.
//
// Benthos builds each component on its own and gives them no way to reach
// each other, so the stages report to the process's Books, Default: a Book
// per destination, named by the disk_queue that delivers to it (its
// `destination`). The disk_queue reports to its Book (stored, repeated,
// failed, delivered, and what waits) and hands each event out with its Book
// in the message's context, where the dead letter keeper finds it
// (dead-lettered); the netcore_webhook input counts what it received at
// every destination. With one destination (the default pipeline) there is
// one Book, and the page reads as it always did; with several, an event
// delivered to one and waiting for another is both, each in its own Book.
// The Books are off, and every report a no-op, unless the inspector turns
// them on.
//
//   - books.go: the Books of a process, and the Book a message names;
//   - book.go: a Book and the fate of each event, kept for a bounded
//     number of the latest events;
//   - pipeline.go: counts per minute for the last hour, and what waits in
//     the queue.
package fate
