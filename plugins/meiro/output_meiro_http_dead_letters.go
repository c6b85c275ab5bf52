package meiro

import (
	"context"
	"strconv"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/stage"
	"github.com/netcore-connect/netcore-connect/plugins/deadletter"
)

// WriteBatch sends each message in turn, as http_client does. A message
// that becomes a dead letter (deadLetter) is acknowledged, and the batch
// goes on; at the first other failure the batch fails from that message on,
// so that what was delivered or kept is not sent again.
func (o *meiroHTTP) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	for i, msg := range batch {
		err := o.send(ctx, msg)
		if err == nil || o.keptAsDeadLetter(msg, err) {
			continue
		}
		if len(batch) == 1 {
			return err
		}
		failed := service.NewBatchError(batch, err)
		for j := i; j < len(batch); j++ {
			failed = failed.Failed(j, err)
		}
		return failed
	}
	return nil
}

// keptAsDeadLetter writes msg as a dead letter, with err as its reason, when
// err says that sending it again cannot help: Meiro Events refused it for
// good (stage.RefusedForGood, decided by the status the answer carried), or
// it was delivered max_deliveries times. It says whether msg was kept; one
// that could not be written fails as it would have without dead letters.
func (o *meiroHTTP) keptAsDeadLetter(msg *service.Message, err error) bool {
	if o.deadLetters == nil {
		return false
	}
	var why string
	switch {
	case stage.RefusedForGood(err):
		why = "refused for good"
	case o.deliveredTooOften(msg):
		why = "failed " + strconv.Itoa(o.conf.maxDeliveries) + " deliveries"
	default:
		return false
	}
	if kerr := o.deadLetters.Keep(service.MessageBatch{deadletter.WithReason(msg, err)}, why); kerr != nil {
		o.log.Errorf("Keeping an event (%s) as a dead letter: %v", why, kerr)
		return false
	}
	return true
}

// deliveredTooOften says whether msg's nats_num_delivered metadata has
// reached max_deliveries (set above 0).
func (o *meiroHTTP) deliveredTooOften(msg *service.Message) bool {
	if o.conf.maxDeliveries <= 0 {
		return false
	}
	v, _ := msg.MetaGet(stage.MetaNATSNumDelivered)
	n, err := strconv.Atoi(v)
	return err == nil && n >= o.conf.maxDeliveries
}
