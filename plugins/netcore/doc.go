// Package netcore holds the stages that take a Netcore CE post apart: the
// netcore_webhook input that receives it and the netcore_explode processor
// that splits it into single events.
//
// Receiving (the netcore_webhook input):
//   - input_netcore_webhook.go: the config spec and the server's lifecycle
//     (Connect, ReadBatch, Close);
//   - webhook_config.go: the parsed config, its fields read in a fixed order;
//   - webhook_request.go: the path of one request, from the client address
//     to the answer (checks in the documented order, reading the body within
//     its budget, waiting for the pipeline's acknowledgement), and the URL
//     check senders make when a URL is saved (HEAD, GET, an empty post:
//     200, nothing stored);
//   - webhook_token.go: the optional shared token (header or query),
//     compared in constant time and hidden wherever a URL is shown;
//   - webhook_record.go: what is kept of each request (metrics, the log line,
//     rejected bodies), with refusal lines rate-limited;
//   - body_budget.go: the bound on the bytes posts hold from the first byte
//     read to the answer, with a share kept for small posts;
//   - allowlist.go: client addresses, allowlists and trusted proxies;
//   - decode.go: form and JSON bodies into a Post, with the exact reason a
//     body is refused;
//   - rejected.go: the file of rejected posts, kept whole for inspection;
//   - webhook_encoding.go: gzip and deflate bodies;
//   - refusal_lines.go: the rate limit on log lines of refusals;
//   - inspector.go: the read-only page of the latest posts, with
//     inspector_view.go (what each view shows, filters and search),
//     inspector_page.go (the HTML), inspector_chart.go (the SVG chart),
//     inspector_mask.go (personal fields masked, in events and in the
//     refusals that quote them) and inspector_mask_walk.go (the lenient
//     walk over JSON that finds them).
//
// Exploding: explode.go holds the Exploder, one message per event with
// panel_name, event_time and event_id added; the netcore_explode processor
// (processor_netcore_explode.go) applies it, and so does the disk_queue
// buffer when it stores posts whole. explode_copies.go numbers the
// identical events of a post, so that each has an event id of its own.
//
// Delivering is the meiro package's.
package netcore
