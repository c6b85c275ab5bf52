package stage

// Metadata keys set by the netcore_webhook input on each post, and carried
// by every event exploded from it.
const (
	// MetaClientIP is the address of the sender, after trusted proxies.
	MetaClientIP = "netcore_client_ip"
	// MetaRequestID is the post's request id, also its X-Request-Id answer
	// header and the request_id of its log lines.
	MetaRequestID = "netcore_request_id"
	// MetaReceivedAt is when the post arrived, RFC 3339 with nanoseconds,
	// UTC. netcore_explode times an event without a usable ts by it.
	MetaReceivedAt = "netcore_received_at"
)

// Metadata keys set by the netcore_explode processor on each event.
const (
	// MetaPanel is the panel the event came under (its panel_name).
	MetaPanel = "netcore_panel"
	// MetaEventIndex is the event's place in its panel's array, from 0.
	MetaEventIndex = "netcore_event_index"
	// MetaEventID is the event's id (its event_id): the disk_queue removes
	// repeats by it, nats_jetstream publishes it as Nats-Msg-Id.
	MetaEventID = "netcore_event_id"
	// MetaEventTimeSource says where event_time came from: "ts" or
	// "received_at".
	MetaEventTimeSource = "netcore_event_time_source"
)

// MetaPrefix starts every key above: outputs that keep or forward
// metadata (dead_letter, nats_jetstream) keep the keys with this prefix.
const MetaPrefix = "netcore_"

// Metadata keys set by components of Benthos and read by ours.
const (
	// MetaFallbackError is set by Benthos's fallback output on a message
	// that its first output failed to send: the error's text. dead_letter
	// keeps it as the reason.
	MetaFallbackError = "fallback_error"
)

// Metadata keys set by our outputs (meiro_http, postgres) on the copy of a
// message they keep as a dead letter.
const (
	// MetaDeadLetterStatus is the HTTP status (an int, structured
	// metadata) of the answer that refused the message, for the inspector;
	// not written to the dead letter line (no netcore_ prefix).
	MetaDeadLetterStatus = "dead_letter_status"
)

// Metadata keys set by the nats_jetstream input on each message.
const (
	// MetaNATSSequence is the message's sequence number in the stream.
	MetaNATSSequence = "nats_sequence"
	// MetaNATSSubject is the subject it was published to.
	MetaNATSSubject = "nats_subject"
	// MetaNATSNumDelivered counts its deliveries, this one included; the
	// meiro_events output dead-letters an event at max_deliveries.
	MetaNATSNumDelivered = "nats_num_delivered"
)

// Metadata keys set by the netcore_archive input on each event it replays.
const (
	// MetaArchiveFile is the archive file the event was read from, relative
	// to the archive's folder.
	MetaArchiveFile = "netcore_archive_file"
	// MetaArchiveLine is its line in that file, from 1.
	MetaArchiveLine = "netcore_archive_line"
)
