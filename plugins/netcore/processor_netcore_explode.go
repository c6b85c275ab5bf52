package netcore

import (
	"context"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

func explodeProcessorSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Parsing").
		Summary("Splits a Netcore post into one message per event, adding the panel name, the event time and a stable event id.").
		Description(`
The input is a post's JSON, `+"`{\"<panel_name>\": [event, ...], ...}`"+`, as the `+"`netcore_webhook`"+` input emits it (its decoded form is reused, so the post is not parsed twice) or from any other input. Every element of every panel array becomes one message, in the order sent. A post with no events yields no messages, which acknowledges it.

Each message body is the event object exactly as Netcore sent it, every field and number unchanged (big integers and decimals are never turned into floating point; only insignificant white space is removed), plus three fields, each left out when the event already has a field of that name:

- `+"`panel_name`"+`: the panel (key of the post) the event came in.
- `+"`event_time`"+`: RFC 3339 time in UTC from `+"`event_params.ts`"+`, a 12-digit `+"`yyMMddHHmmss`"+` number or string read in `+"`timezone`"+`. When `+"`ts`"+` is missing or malformed it is the time the post was received, and the metadata `+"`netcore_event_time_source`"+` says `+"`received_at`"+` instead of `+"`ts`"+`.
- `+"`event_id`"+`: a hash of the panel name and the event's bytes, so the same event sent again gets the same id (for removing repeats downstream). The second, third… identical event within one post is hashed with its copy number too: every event of a post has an id of its own, and a post sent again gets the same ids again.

Metadata added to each message: `+"`netcore_panel`"+`, `+"`netcore_event_index`"+` (position in its panel, from 0), `+"`netcore_event_id`"+`, `+"`netcore_event_time_source`"+`; metadata of the post (`+"`netcore_client_ip`"+`, `+"`netcore_request_id`"+`, `+"`netcore_received_at`"+`) is kept.

Place it in the input's `+"`processors`"+`, before any buffer, so that each event is stored, retried and acknowledged on its own. A body that is not a Netcore post fails the processor with a message that says why.`).
		Fields(netcorepost.ExplodeFields(netcorepost.DefaultTimezone)...).
		Example("Explode at the input", "", `
input:
  netcore_webhook: {}
  processors:
    - netcore_explode:
        timezone: Asia/Kolkata
`)
}

func init() {
	service.MustRegisterProcessor("netcore_explode", explodeProcessorSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.Processor, error) {
			return newExplodeProcessorFromConfig(conf)
		})
}

// explodeProcessor is netcore_explode: an Exploder applied to each post.
type explodeProcessor struct{ *netcorepost.Exploder }

func newExplodeProcessorFromConfig(conf *service.ParsedConfig) (*explodeProcessor, error) {
	e, err := netcorepost.NewExploder(conf)
	if err != nil {
		return nil, err
	}
	return &explodeProcessor{e}, nil
}

func (p *explodeProcessor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	post, err := netcorepost.PostOf(msg)
	if err != nil {
		return nil, err
	}
	return p.ExplodePost(msg, post)
}

func (p *explodeProcessor) Close(context.Context) error { return nil }
