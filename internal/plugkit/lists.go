package plugkit

import "strings"

// SplitList flattens list entries that may each hold several values
// separated by commas (`[ "${NATS_URL}" ]` with NATS_URL=a,b), trimming
// spaces and dropping empty values.
func SplitList(entries []string) []string {
	var values []string
	for _, entry := range entries {
		for v := range strings.SplitSeq(entry, ",") {
			if v = strings.TrimSpace(v); v != "" {
				values = append(values, v)
			}
		}
	}
	return values
}
