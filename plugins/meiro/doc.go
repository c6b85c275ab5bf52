// Package meiro is the delivery side: how events reach Meiro Events.
//
//   - output_meiro_events.yaml: the meiro_events output, a Benthos template
//     (meiro_http set up for Meiro Events), defined once for every shipped
//     pipeline;
//   - template.go: registers it with the binary;
//   - output_meiro_http.go: the meiro_http output, the HTTP client under
//     meiro_events: POSTs on fasthttp, worded as Benthos's http_client, for
//     about 40% less CPU an event than through http_client and net/http; a
//     failure carries its status (stage.StatusError) or its timeout
//     (stage.TimeoutError) as data;
//   - output_meiro_http_dead_letters.go: its batches, and the events it keeps
//     as dead letters (refused for good, by stage.RefusedForGood, or failed
//     max_deliveries times), through the deadletter.Keeper every output
//     shares;
//   - output_meiro_http_connections.go: how meiro_http reaches its URL:
//     kept-alive connections sent on again when the server closed them, the
//     proxy of the environment, TLS, and writes that ran out of time told
//     from unanswered requests;
//   - processor_netcore_json_array.go: the netcore_json_array processor,
//     which joins a batch into one JSON array for endpoints that take
//     arrays (meiro_events uses it when batch_size is over 1).
package meiro
