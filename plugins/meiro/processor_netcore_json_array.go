package meiro

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func jsonArrayProcessorSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Parsing").
		Summary("Joins a batch of JSON messages into one message holding a JSON array of them, every byte of each kept as it was.").
		Description(`
For destinations that take several events in one request. Unlike core's `+"`archive: {format: json_array}`"+`, the events are not parsed and written again: their fields keep their order and their numbers their exact text, and it costs a copy. Set `+"`batch_size`"+` to the output's batching count: above 1, every batch becomes an array, even a batch of one (a batch flushed by its period), so the destination always gets arrays; at 1, each message is left as it is, so the same pipeline serves both modes. Every message must be valid JSON; the processor fails the batch otherwise. The metadata of the first message is kept.

Use it in an output's `+"`batching.processors`"+`.`).
		Example("Up to 100 events a request", "", `
output:
  http_client:
    url: ${MEIRO_EVENTS_URL}
    batching:
      count: 100
      period: 20ms
      processors:
        - netcore_json_array:
            batch_size: 100
`).
		Field(service.NewIntField("batch_size").
			Description("The output's batching count. Above 1 every batch becomes a JSON array; at 1 messages are left as they are.").
			Default(1))
}

func init() {
	service.MustRegisterBatchProcessor("netcore_json_array", jsonArrayProcessorSpec(),
		func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchProcessor, error) {
			size, err := conf.FieldInt("batch_size")
			return jsonArrayProcessor{batching: size > 1}, err
		})
}

type jsonArrayProcessor struct {
	batching bool // every batch, even of one, becomes an array
}

func (p jsonArrayProcessor) ProcessBatch(_ context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	if len(batch) == 0 || (len(batch) == 1 && !p.batching) {
		return []service.MessageBatch{batch}, nil
	}
	size := 2
	bodies := make([][]byte, len(batch))
	for i, msg := range batch {
		b, err := msg.AsBytes()
		if err != nil {
			return nil, err
		}
		if !json.Valid(b) {
			return nil, fmt.Errorf("message %d of the batch is not valid JSON", i)
		}
		bodies[i] = b
		size += len(b) + 1
	}
	array := make([]byte, 0, size)
	array = append(array, '[')
	for i, b := range bodies {
		if i > 0 {
			array = append(array, ',')
		}
		array = append(array, b...)
	}
	out := batch[0].Copy()
	out.SetBytes(append(array, ']'))
	return []service.MessageBatch{{out}}, nil
}

func (jsonArrayProcessor) Close(context.Context) error { return nil }
