package stage

// The netcore_* metrics, by the stage that records each. The metric table of
// docs/operating.md, deploy/grafana-dashboard.json and deploy/prometheus-alerts.yaml are
// tested against Metrics.
const (
	// netcore_webhook
	MetricPosts          = "netcore_posts_total"           // counter by status: every answered request
	MetricEventsReceived = "netcore_events_received_total" // counter by panel: events of stored posts
	MetricPostBytes      = "netcore_post_bytes"            // histogram of body sizes
	MetricAck            = "netcore_ack_seconds"           // histogram of receipt to answer, for posts handed to the queue
	MetricEmptyPosts     = "netcore_empty_posts_total"     // counter: empty posts (no events), answered 200 and not stored; HEAD and GET URL checks are not counted

	MetricQuarantinedPosts = "netcore_quarantined_posts_total"       // counter by client: posts from addresses outside allowed_ips kept in the quarantine
	MetricQuarantineBytes  = "netcore_quarantine_bytes"              // gauge: bytes the quarantine holds, not delivered until released
	MetricSchemaChanges    = "netcore_schema_changes_total"          // counter by panel and change: changes of a panel's shape the catalog flagged
	MetricCatalogUnlearnt  = "netcore_catalog_events_unlearnt_total" // counter: events of stored posts the catalog never saw (its queue was full)

	// disk_queue
	MetricQueueEvents         = "netcore_queue_events"                     // gauge: events waiting
	MetricQueueBytes          = "netcore_queue_bytes"                      // gauge: bytes waiting
	MetricQueueOldest         = "netcore_queue_oldest_seconds"             // gauge: the oldest waiting event's age
	MetricQueueFullRatio      = "netcore_queue_full_ratio"                 // gauge: the larger of events/max_events and bytes/max_bytes; at 1 posts get 503
	MetricEventsDelivered     = "netcore_events_delivered_total"           // counter: events that left the queue accepted by the output
	MetricEventsDeduplicated  = "netcore_events_deduplicated_total"        // counter: repeats acknowledged and not stored again
	MetricRecordsDamaged      = "netcore_records_damaged_total"            // counter: records that failed their checksum, moved aside
	MetricJournalRepublished  = "netcore_journal_republished_events_total" // counter (retain_after_ack): retained events handed out again while running
	MetricEventsDeadLettered  = "netcore_events_dead_lettered_total"       // counter (dead_letter): events refused for good
	MetricEventsArchived      = "netcore_events_archived_total"            // counter (netcore_archive): events written to the archive, fsync'd
	MetricArchiveFilesDamaged = "netcore_archive_files_damaged_total"      // counter (netcore_archive): hour files found damaged at start, moved aside whole

	// netcore_contract
	MetricContractViolations = "netcore_contract_violations_total" // counter: events that violated their panel's schema, delivered or dead-lettered

	// nats_jetstream input (the scale-out deliverer)
	MetricRepeatsDropped      = "netcore_repeats_dropped_total"       // counter: events delivered within dedupe_window that came again, acknowledged and not delivered
	MetricDeliveredIDsEvicted = "netcore_delivered_ids_evicted_total" // counter: delivered ids forgotten before dedupe_window, to stay within dedupe_max_bytes
)

// Metrics lists every netcore_* metric above.
var Metrics = []string{
	MetricPosts, MetricEventsReceived, MetricPostBytes, MetricAck, MetricEmptyPosts,
	MetricQuarantinedPosts, MetricQuarantineBytes, MetricSchemaChanges, MetricCatalogUnlearnt,
	MetricQueueEvents, MetricQueueBytes, MetricQueueOldest, MetricQueueFullRatio,
	MetricEventsDelivered, MetricEventsDeadLettered, MetricEventsDeduplicated, MetricRecordsDamaged, MetricJournalRepublished,
	MetricEventsArchived, MetricArchiveFilesDamaged, MetricContractViolations,
	MetricRepeatsDropped, MetricDeliveredIDsEvicted,
}
