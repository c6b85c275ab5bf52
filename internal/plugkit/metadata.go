package plugkit

import (
	"strings"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// WalkMetaWithPrefix calls fn for each metadata key of msg that starts with
// prefix (every key when prefix is empty), with its value as a string.
func WalkMetaWithPrefix(msg *service.Message, prefix string, fn func(key, value string)) {
	_ = msg.MetaWalk(func(k, v string) error {
		if strings.HasPrefix(k, prefix) {
			fn(k, v)
		}
		return nil
	})
}
