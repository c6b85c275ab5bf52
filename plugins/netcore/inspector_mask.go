package netcore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/netcore-connect/netcore-connect/internal/rawjson"
)

// personalParams are the event_params fields that identify a person.
var personalParams = []string{"identity", "foreignkey", "email", "mobile", "phone"}

// show pretty-prints an event, masking personal fields when asked: the
// identity fields of event_params and every value of att_params (Netcore's
// contact attributes). Numbers keep their exact text.
func (in *inspector) show(event []byte) string {
	if in.mask {
		var ev map[string]any
		d := json.NewDecoder(bytes.NewReader(event))
		d.UseNumber()
		if d.Decode(&ev) == nil {
			maskPersonal(ev)
			if b, err := json.MarshalIndent(ev, "", "  "); err == nil {
				return string(b)
			}
		}
		return "(event not shown: it could not be masked)"
	}
	var out bytes.Buffer
	if json.Indent(&out, rawjson.AppendCompact(nil, event), "", "  ") != nil {
		return string(event)
	}
	return out.String()
}

const masked = "•••"

func maskPersonal(ev map[string]any) {
	if params, ok := ev["event_params"].(map[string]any); ok {
		for k := range params {
			if slices.Contains(personalParams, strings.ToLower(k)) {
				params[k] = masked
			}
		}
	}
	if attrs, ok := ev["att_params"].(map[string]any); ok {
		for k := range attrs {
			attrs[k] = masked
		}
	}
}

// panelList names each panel with its event count, as format (a %s for
// the name, a %d for the count), joined by sep: for logs and the inspector.
func panelList(panels []Panel, format, sep string) string {
	parts := make([]string, len(panels))
	for i, p := range panels {
		parts[i] = fmt.Sprintf(format, p.Name, len(p.Events))
	}
	return strings.Join(parts, sep)
}
