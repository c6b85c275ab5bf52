package netcore

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
For destinations that take several events in one request. Unlike core's `+"`archive: {format: json_array}`"+`, the events are not parsed and written again: their fields keep their order and their numbers their exact text, and it costs a copy. A batch of one message is left as it is (an object, not an array of one), so the same pipeline serves both modes. Every message must be valid JSON; the processor fails the batch otherwise. The metadata of the first message is kept.

Use it in an output's `+"`batching.processors`"+`.`).
		Example("Up to 100 events a request", "", `
output:
  http_client:
    url: ${MEIRO_EVENTS_URL}
    batching:
      count: 100
      period: 20ms
      processors:
        - netcore_json_array: {}
`)
}

func init() {
	service.MustRegisterBatchProcessor("netcore_json_array", jsonArrayProcessorSpec(),
		func(*service.ParsedConfig, *service.Resources) (service.BatchProcessor, error) {
			return jsonArrayProcessor{}, nil
		})
}

type jsonArrayProcessor struct{}

func (jsonArrayProcessor) ProcessBatch(_ context.Context, batch service.MessageBatch) ([]service.MessageBatch, error) {
	if len(batch) < 2 {
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
