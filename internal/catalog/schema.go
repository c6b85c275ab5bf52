package catalog

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/netcore-connect/netcore-connect/internal/rawjson"
)

// SchemaDraft is the JSON Schema dialect exported.
const SchemaDraft = "https://json-schema.org/draft/2020-12/schema"

// schema is a JSON Schema, its members in the order a person reads them.
type schema struct {
	Schema      string             `json:"$schema,omitempty"`
	Title       string             `json:"title,omitempty"`
	Description string             `json:"description,omitempty"`
	Type        any                `json:"type,omitempty"` // a name, or a list of them
	Properties  map[string]*schema `json:"properties,omitempty"`
	Required    []string           `json:"required,omitempty"`
	Items       *schema            `json:"items,omitempty"`
}

// Schema is p's JSON Schema (draft 2020-12): each path with the types
// seen, required where it was in every event that had its parent (not
// inside arrays, whose elements are counted by event, not one by one).
// Other fields are allowed: the events delivered carry the fields the
// receiver adds (panel_name, event_time, event_id), and a field past the
// bounds is not in the catalog.
func (p PanelView) Schema() ([]byte, error) {
	root := &schema{Schema: SchemaDraft, Title: p.Name, Type: "object",
		Description: fmt.Sprintf("Events of the Netcore panel %q as netcore-connect learned them from %d events, %s to %s.", p.Name, p.Learned, p.First.UTC().Format("2006-01-02 15:04"), p.Last.UTC().Format("2006-01-02 15:04"))}
	type open struct {
		s        *schema
		objects  int64 // events in which it held an object
		inArray  bool
		ownDepth int
	}
	stack := []open{{s: root, objects: p.Learned, ownDepth: -1}}
	for _, r := range p.Rows {
		for stack[len(stack)-1].ownDepth >= r.Depth {
			stack = stack[:len(stack)-1]
		}
		parent := stack[len(stack)-1]
		s := &schema{Type: typeOf(r.Types)}
		inArray := parent.inArray
		if r.Name == "[]" {
			parent.s.Items, inArray = s, true
		} else {
			name := r.Name
			if k, err := rawjson.Key([]byte(name)); err == nil {
				name = k
			}
			if parent.s.Properties == nil {
				parent.s.Properties = map[string]*schema{}
			}
			parent.s.Properties[name] = s
			if !inArray && r.Events == parent.objects && parent.objects > 0 {
				parent.s.Required = append(parent.s.Required, name)
			}
		}
		stack = append(stack, open{s: s, objects: r.Types[KindObject], inArray: inArray, ownDepth: r.Depth})
	}
	return json.MarshalIndent(root, "", "  ")
}

func typeOf(t Types) any {
	kinds := t.Kinds()
	if len(kinds) == 1 {
		return kinds[0].String()
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.String()
	}
	return names
}

// SchemaFile is the file name of a panel's schema: the name itself when it
// is made of letters, digits, '-', '_' and '.' only (and does not begin
// with '.'), otherwise each other byte (and '%') written %XX, as in a URL:
// "Push / Android" is Push%20%2F%20Android.json.
func SchemaFile(panel string) string {
	var b strings.Builder
	for i := 0; i < len(panel); i++ {
		c := panel[i]
		safe := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0
		if safe {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() == 0 {
		return "%.json" // the empty name
	}
	return b.String() + ".json"
}
