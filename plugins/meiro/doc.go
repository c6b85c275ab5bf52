// Package meiro is the delivery side: how events reach Meiro Events.
//
//   - output_meiro_events.yaml: the meiro_events output, a Benthos template
//     (meiro_http with retries, then dead letters for refused events or
//     back to the queue), defined once for every shipped pipeline;
//   - template.go: registers it with the binary;
//   - output_meiro_http.go: the meiro_http output, the HTTP client under
//     meiro_events: POSTs on fasthttp, worded as Benthos's http_client, for
//     about 40% less CPU an event than through http_client and net/http;
//   - output_meiro_http_connections.go: how meiro_http reaches its URL:
//     kept-alive connections sent on again when the server closed them, the
//     proxy of the environment, TLS, and writes that ran out of time told
//     from unanswered requests;
//   - processor_netcore_json_array.go: the netcore_json_array processor,
//     which joins a batch into one JSON array for endpoints that take
//     arrays (meiro_events uses it when batch_size is over 1).
package meiro
