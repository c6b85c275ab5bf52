// Package netcorepost is the Netcore post: what one webhook request holds,
// how it is read, and how it becomes events. The netcore_webhook input
// decodes posts with it, the netcore_explode processor and the disk_queue
// buffer explode them with it, and the inspector works out their event ids
// with it; none of them needs another to do so.
//
// A post is the JSON object of a request's data form field (or the JSON
// body itself): each member a panel (Netcore's journey) whose value is an
// array of events, each event a JSON object. DecodeBody checks a body in
// one pass and splits it into a Post of Panels whose events are the exact
// bytes Netcore sent, or refuses it with a RejectError that carries the
// HTTP status and says what is wrong. Nothing in an event is parsed into Go
// values: numbers, big integers and key order stay as sent.
//
// Exploding makes one message per event: the event as compact JSON, with
// panel_name, event_time (from event_params.ts, read in the configured
// zone, else when the post was received: ReceivedAt) and event_id added,
// and the same as metadata. The Exploder does it for a post at once
// (ExplodePost) or one event at a time (ExplodeEvent, as the disk queue
// hands its events out, so that a big post is never all messages at once).
//
// An event id (EventKey) is a hash of the panel name and the event's
// compact bytes, so that the same event posted again (Netcore retries a
// post it got no 200 for) has the same id: that is what lets the disk
// queue answer a repeated post without storing its events twice, and the
// inspector follow each event to its fate. Identical events within one
// post (two clicks without a timestamp) are numbered (CopiesOf) and the
// copy number hashed in, so that each still has an id of its own and a
// resend gives every one the same id again.
//
// decode.go: bodies into posts; explode.go: the Exploder, event ids,
// received-at; explode_copies.go: copies numbered, EventKeys of a post.
package netcorepost
