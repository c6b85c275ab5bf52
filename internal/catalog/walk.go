package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"

	"github.com/netcore-connect/netcore-connect/internal/rawjson"
)

// Kind is a JSON type as JSON Schema names it: a number with no fraction
// and no exponent is an integer.
type Kind uint8

// The kinds, in the order they are listed.
const (
	KindString Kind = iota
	KindInteger
	KindNumber
	KindBoolean
	KindObject
	KindArray
	KindNull
	kinds
)

var kindNames = [kinds]string{"string", "integer", "number", "boolean", "object", "array", "null"}

func (k Kind) String() string { return kindNames[k] }

func kindOf(v []byte) Kind {
	switch rawjson.KindOf(v) {
	case rawjson.Object:
		return KindObject
	case rawjson.Array:
		return KindArray
	case rawjson.Boolean:
		return KindBoolean
	case rawjson.Null:
		return KindNull
	case rawjson.Number:
		if bytes.ContainsAny(v, ".eE") {
			return KindNumber
		}
		return KindInteger
	}
	return KindString
}

// scalar says a value of kind k can be kept as an example.
func (k Kind) scalar() bool { return k != KindObject && k != KindArray }

// Types counts the learned events that carried each kind at a path.
type Types [kinds]int64

// Kinds are the kinds seen, in order.
func (t Types) Kinds() []Kind {
	var out []Kind
	for k, n := range t {
		if n > 0 {
			out = append(out, Kind(k))
		}
	}
	return out
}

// String lists the kinds seen: "integer, string".
func (t Types) String() string {
	names := make([]string, 0, kinds)
	for _, k := range t.Kinds() {
		names = append(names, k.String())
	}
	return strings.Join(names, ", ")
}

// MarshalJSON writes the kinds seen by name.
func (t Types) MarshalJSON() ([]byte, error) {
	m := map[string]int64{}
	for _, k := range t.Kinds() {
		m[k.String()] = t[k]
	}
	return json.Marshal(m)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (t *Types) UnmarshalJSON(b []byte) error {
	var m map[string]int64
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	for name, n := range m {
		k := Kind(0)
		for k < kinds && kindNames[k] != name {
			k++
		}
		if k == kinds {
			return errors.New("unknown JSON type " + name)
		}
		t[k] = n
	}
	return nil
}

// Bounds of the walk: deeper values and later elements are not walked,
// since an array contributes its elements' paths once however long it is.
const (
	maxDepth    = 32
	maxElements = 64
)

var errEnough = errors.New("enough elements")

// walker walks events of one panel, each once, building each value's path
// in buf: keys as sent (escapes kept), joined by dots, [] for elements.
type walker struct {
	l   *learning
	p   *Panel
	n   int64 // the panel's learned event being walked
	buf []byte
}

func (w *walker) event(ev []byte) {
	w.n = w.p.Learned
	w.p.Learned++
	w.buf = w.buf[:0]
	w.members(ev, nil, 0)
	if w.n >= QuietEvents {
		w.l.missing(w.p, w.n)
	}
}

func (w *walker) members(obj []byte, parent *Path, depth int) {
	base := len(w.buf)
	_ = rawjson.Members(obj, func(key, v []byte) error {
		w.buf = w.buf[:base]
		if base > 0 {
			w.buf = append(w.buf, '.')
		}
		w.buf = append(w.buf, key...)
		w.value(v, parent, depth)
		return nil
	})
	w.buf = w.buf[:base]
}

func (w *walker) elements(arr []byte, parent *Path, depth int) {
	base := len(w.buf)
	w.buf = append(w.buf, "[]"...)
	_ = rawjson.Elements(arr, func(i int, el []byte) error {
		if i == maxElements {
			return errEnough
		}
		w.value(el, parent, depth)
		return nil
	})
	w.buf = w.buf[:base]
}

// value learns the value at buf's path, then what it holds.
func (w *walker) value(v []byte, parent *Path, depth int) {
	f := w.see(v, parent)
	if f == nil || depth == maxDepth {
		return
	}
	switch kindOf(v) {
	case KindObject:
		w.members(v, f, depth+1)
	case KindArray:
		w.elements(v, f, depth+1)
	}
}

// see counts v at buf's path, once per event and kind, flagging a new
// field and a new type; nil when the path is past the bounds.
func (w *walker) see(v []byte, parent *Path) *Path {
	p, n, l := w.p, w.n, w.l
	f := p.index[string(w.buf)]
	isNew := f == nil
	if isNew {
		if f = l.newPath(p, w.buf, parent, n); f == nil {
			return nil
		}
		if n >= QuietEvents && (parent == nil || parent.FirstAt != n) {
			l.flag(Change{Panel: p.Name, Path: f.Path, Kind: ChangeNewField, Before: "absent", After: kindOf(v).String()})
		}
	}
	if f.LastAt != n {
		if f.LastAt >= f.FirstAt && f.LastAt < n-1 {
			f.addMiss(f.LastAt+1, n-1)
		}
		f.LastAt, f.Last, f.now = n, l.at, 0
		f.Events++
	}
	k := kindOf(v)
	if f.now&(1<<k) != 0 {
		return f
	}
	f.now |= 1 << k
	if f.Types[k] == 0 {
		changed := !isNew && f.FirstAt < n && n >= QuietEvents && (k != KindInteger || f.Types[KindNumber] == 0)
		if changed {
			l.flag(Change{Panel: p.Name, Path: f.Path, Kind: ChangeTypeChanged, Before: f.Types.String(), After: k.String()})
		}
		if k.scalar() && (f.Example == "" || changed) {
			l.keepExample(f, v)
		}
	}
	f.Types[k]++
	return f
}
