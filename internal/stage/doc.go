// Package stage is the contract between the stages of a netcore-connect
// pipeline, written in one place: what one stage leaves for another (the
// metadata keys), what operators and deploy files rely on (the metric
// names), what Meiro Events says when it refuses an event for good, and
// the errors a delivery fails with, which carry its status or its timeout
// as data from the output to the stages that decide by them.
// It holds names, values and those error types, no other behaviour, the way
// nats.go keeps every error of its jetstream package in one file.
//
//   - metadata.go: the metadata keys set by netcore_webhook, netcore_explode,
//     Benthos's fallback output and the nats_jetstream input, and who reads
//     each;
//   - metrics.go: the names of the netcore_* metrics (the metric table of
//     docs/operating.md and the deploy files are tested against this list);
//   - refusals.go: the HTTP statuses that make an event a dead letter;
//   - errors.go: StatusError and TimeoutError, and RefusedForGood, which
//     decides a refusal from RefusalStatuses;
//   - timeouts.go: the words of a delivery that timed out.
package stage
