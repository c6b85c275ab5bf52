// Package kafka holds the kafka output: netcore-connect sending each event
// to a Kafka (or Redpanda) topic over franz-go, acknowledging an event to the
// queue only once the brokers acknowledged it.
//
// Files:
//   - output_kafka.go: the output's config spec, registration and the
//     writing of batches (records, keys, headers, per-event errors).
//   - client.go: the franz-go client options built from the config:
//     brokers, acks and idempotence, compression, TLS, SASL, and the
//     logger that passes franz-go's warnings to Benthos's log.
//
// The tests run against franz-go's in-process Kafka (pkg/kfake), because no
// Kafka broker can run on the machines that build netcore-connect.
package kafka
