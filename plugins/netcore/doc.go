// Package netcore holds the two components that meet Netcore CE: the
// netcore_webhook input that receives its posts and the netcore_explode
// processor that splits a post into single events. What a post is (decoding
// it, its events, their ids) is internal/netcorepost's, shared with the
// disk_queue buffer; the inspector's page is internal/inspector's, which the
// input serves when inspect.address is set.
//
// Receiving (the netcore_webhook input):
//   - input_netcore_webhook.go: the config spec and the server's lifecycle
//     (Connect, ReadBatch, Close);
//   - webhook_config.go: the parsed config, its fields read in a fixed order;
//   - webhook_request.go: the path of one request, from the client address
//     to the answer (checks in the documented order, reading the body within
//     its budget, waiting for the pipeline's acknowledgement);
//   - webhook_url_check.go: the URL check senders make when a URL is saved
//     (HEAD, GET, an empty post: 200, nothing stored);
//   - webhook_token.go: the optional shared token (header or query),
//     compared in constant time and hidden wherever a URL is shown;
//   - webhook_record.go: what is kept of each request (metrics, the log line,
//     rejected bodies, the inspector), with refusal lines rate-limited;
//   - webhook_quarantine.go: posts from addresses outside the allowlist kept
//     in the quarantine (unknown_sources: quarantine), and their release;
//   - webhook_inspector.go: the inspector as the input makes it, and who
//     may open it (the gate: loopback, and the allowlist);
//   - body_budget.go: the bound on the bytes posts hold from the first byte
//     read to the answer, with a share kept for small posts;
//   - allowlist.go: client addresses, allowlists and trusted proxies;
//   - rejected.go: the file of rejected posts, kept whole for inspection;
//   - webhook_encoding.go: gzip and deflate bodies;
//   - refusal_lines.go: the rate limit on log lines of refusals.
//
// Exploding: the netcore_explode processor (processor_netcore_explode.go)
// applies netcorepost's Exploder to each post, reusing the post the input
// decoded; the disk_queue buffer applies the same Exploder when it stores
// posts whole.
//
// Delivering is the meiro package's.
package netcore
