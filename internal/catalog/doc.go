// Package catalog learns, from the events that arrive, the shape of every
// Netcore panel: each field path with the JSON types seen, how many events
// carry it, when it was first and last seen and one example value (masked
// as the inspector masks). It flags each change of that shape once, as it
// happens (a new panel, a new field, a field seen with a type it never had,
// a field gone missing), keeps itself across restarts and exports itself as
// JSON Schema.
//
// Netcore's payload is not a fixed format, and a journey edited in its UI
// changes what arrives without telling anyone: the catalog is how the
// operator hears of it before an analyst does.
//
// The package takes plain values (a panel name, the raw JSON of each event,
// the request id of the post, a time), not the webhook's types, so that it
// stands beside the receiver rather than inside it.
//
// Files:
//   - catalog.go: the Catalog, its bounds, and learning one event;
//   - walk.go: the one walk over an event's JSON that finds its paths;
//   - drift.go: the four kinds of change and when each is flagged;
//   - learner.go: learning off the request path, fed by a channel bounded
//     in bytes, sampling events when learning would cost too much;
//   - store.go: the file under the data directory, written atomically;
//   - schema.go: one JSON Schema (draft 2020-12) per panel;
//   - show.go: the catalog as text, for `netcore-connect catalog show`;
//   - page.go: the inspector's Catalog page.
package catalog
