// Package meiro is the delivery side: how events reach Meiro Events.
//
//   - output_meiro_events.yaml: the meiro_events output, a Benthos template
//     (http_client with retries, then dead letters for refused events or
//     back to the queue), defined once for every shipped pipeline;
//   - template.go: registers it with the binary;
//   - processor_netcore_json_array.go: the netcore_json_array processor,
//     which joins a batch into one JSON array for endpoints that take
//     arrays (meiro_events uses it when batch_size is over 1).
package meiro
