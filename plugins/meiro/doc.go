// Package meiro is the delivery side: how events reach Meiro Events.
//
//   - output_meiro_events.yaml: the meiro_events output, a Benthos template
//     (http_client with retries, then dead letters for refused events or
//     back to the queue), defined once for every shipped pipeline;
//   - template.go: registers it with the binary.
package meiro
