package inspector

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

// newInspector is an inspector open to loopback peers only.
func newInspector(keep int, mask Mask) *Inspector { return New(Config{Keep: keep, Mask: mask}) }

// samplesDir holds realistic Netcore posts, each as a form and as JSON.
const samplesDir = "../../tests/testdata/samples"

// defaultMask is the inspector's default mask_fields.
func defaultMask(t testing.TB) Mask {
	t.Helper()
	rules, err := ParseMask(DefaultMaskFields)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

func TestInspectorMasksFieldsAtAnyDepthAndByPath(t *testing.T) {
	rules, err := ParseMask([]string{"identity, EMAIL", "att_params,custom_params.user_email"})
	if err != nil {
		t.Fatal(err)
	}
	in := newInspector(1, rules)
	event := `{"msgid":"7","event_params":[{"Identity":"a@example.com","ts":240301101500},{"nested":{"identity":919800000001}}],` +
		`"att_params":{"CITY":"Pune","tags":["x","y"]},"custom_params":{"user_email":"b@example.com","plan":"gold"},` +
		`"user_email":"top@example.com","contact":{"email":"c@example.com"},"big":12345678901234567890}`
	shown, values := in.show([]byte(event))
	for _, leaked := range []string{"a@example.com", "919800000001", "Pune", `"x"`, "b@example.com", "c@example.com"} {
		if strings.Contains(shown, leaked) {
			t.Errorf("%s shown unmasked:\n%s", leaked, shown)
		}
	}
	// user_email outside custom_params is not the path masked; the rest is
	// shown as it was, in its order, numbers exact.
	for _, kept := range []string{"top@example.com", "gold", "12345678901234567890", "240301101500"} {
		if !strings.Contains(shown, kept) {
			t.Errorf("%s not shown:\n%s", kept, shown)
		}
	}
	if !json.Valid([]byte(shown)) || strings.Index(shown, "msgid") > strings.Index(shown, "event_params") {
		t.Errorf("want the event as JSON in its own order:\n%s", shown)
	}
	want := []string{"a@example.com", "919800000001", "Pune", "x", "y", "b@example.com", "c@example.com"}
	if fmt.Sprint(values) != fmt.Sprint(want) {
		t.Errorf("masked values %q, want %q", values, want)
	}
}

func TestInspectorMasksRefusalTexts(t *testing.T) {
	rules := defaultMask(t)
	_, values := (&Inspector{mask: rules}).show([]byte(`{"event_params":{"identity":"ravi\u0040example.com"},"att_params":{"COUNTRY":"IN","MOBILE":"919800000001"}}`))
	for _, c := range []struct{ name, text, want string }{
		{"JSON echo cut short, as an error keeps it",
			`http://m/collect: HTTP request returned unexpected response code (400): Bad Request, Error: {"error":"unknown panel","event":{"event_params":{"identity":"ravi@example.com"},"att_params":{"COUNTRY":"IN","MOBILE":"9198…`,
			`http://m/collect: HTTP request returned unexpected response code (400): Bad Request, Error: {"error":"unknown panel","event":{"event_params":{"identity":"•••"},"att_params":"•••"`},
		{"the event's values in words, in another case",
			`contact RAVI@EXAMPLE.COM (919800000001) has opted out in IN`,
			`contact ••• (•••) has opted out in IN`},
		{"as the event wrote it, escaped",
			`rejected "ravi\u0040example.com"`,
			`rejected "•••"`},
		{"another contact's fields, keys quoted without braces",
			`field "Email": "x@example.org" is invalid, "status": 400`,
			`field "Email": "•••" is invalid, "status": 400`},
		{"JSON after a stray quote, in a batch",
			`bad "input [{"identity":"p@example.org"},{"identity":["q@example.org"]},{"att_params":{}}]`,
			`bad "input [{"identity":"•••"},{"identity":"•••"},{"att_params":"•••"}]`},
		{"nothing personal", `Meiro Events is down: connection refused`, `Meiro Events is down: connection refused`},
	} {
		if got := rules.maskText(c.text, values); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// FuzzInspectorMask masks arbitrary events and texts. Whatever comes in: no
// panic; an event that is JSON is shown as JSON with no value of a masked
// field left in it; a text keeps none of the event's masked values; and a
// text that is a JSON string is read as encoding/json reads it.
//
//	go test ./plugins/netcore/ -run '^$' -fuzz FuzzInspectorMask -fuzztime 1m
func FuzzInspectorMask(f *testing.F) {
	f.Add(`{"event_params":[{"identity":"a@example.com"}],"att_params":{"CITY":"Pune"}}`, `Error: {"identity":"a@example.com","att_params":{"CITY":"Pu`)
	f.Add(`{"custom_params":{"user_email":"b\u0040example.com"}}`, `"user_email": "b@example.com" (b\u0040example.com)`)
	f.Add(`[[[{"x":1}]]]`, `bad "input [{"Email":"q"}]`)
	f.Add(`{"att_params":{"NAME":"José 😀"}}`, `{"detail":"{\"NAME\":\"Jos\u00e9 \ud83d\ude00\"}"} Jos\u00E9 \ud83d\ude00`)
	f.Add(`{}`, `"Jos\u00e9 \ud83d\ude00 \ud800x \udc00\ud83d \/\b\""`)
	f.Add("{\"identity\":\"\xff\xfeabcd\"}", "\"[{\\\"mobile\\\":\\\"91\\u00e9\xff\xfeabcd")
	in := newInspector(1, defaultMask(f))
	f.Fuzz(func(t *testing.T, event, text string) {
		shown, values := in.show([]byte(event))
		if json.Valid([]byte(event)) && !strings.HasPrefix(shown, "(event not shown") && !json.Valid([]byte(shown)) {
			t.Fatalf("%s shown as %s, not JSON", event, shown)
		}
		var v string
		if quoted := strings.TrimSpace(text); utf8.ValidString(quoted) && json.Unmarshal([]byte(quoted), &v) == nil &&
			strings.HasPrefix(quoted, `"`) && unescape(quoted[1:len(quoted)-1]) != v {
			t.Fatalf("%s read as %q, encoding/json reads %q", quoted, unescape(quoted[1:len(quoted)-1]), v)
		}
		masked := in.mask.maskText(text, values)
		for _, v := range values {
			if len(v) >= minQuotedValueBytes && strings.Contains(strings.ToLower(masked), strings.ToLower(v)) {
				t.Fatalf("%q left in %q (from %q)", v, masked, text)
			}
		}
	})
}

// BenchmarkInspectorMask is the masking a post's page does for each event:
// showing it, and masking its last error (here one that quotes nothing of
// it, as while Meiro Events is down), which a page of 10,000 waiting events
// does 10,000 times every refresh.
func BenchmarkInspectorMask(b *testing.B) {
	in := newInspector(1, defaultMask(b))
	data, err := os.ReadFile(filepath.Join(samplesDir, "app_identify.json"))
	if err != nil {
		b.Fatal(err)
	}
	post, err := netcorepost.DecodeData(data)
	if err != nil {
		b.Fatal(err)
	}
	event := post.Panels[0].Events[0]
	lastError := `Meiro Events did not accept the event: http://127.0.0.1:4000/collect: dial tcp 127.0.0.1:4000: connect: connection refused`
	for b.Loop() {
		_, values := in.show(event)
		in.mask.maskText(lastError, values)
	}
}

// An API may quote the refused event as text inside its JSON answer (a
// "detail" holding the event serialised again): the text is JSON once
// unquoted, and is masked as such, the string quoted again around it.
func TestInspectorMasksJSONQuotedInsideStrings(t *testing.T) {
	rules := defaultMask(t)
	for _, c := range []struct{ name, text, want string }{
		{"an event serialised into a string",
			`{"detail":"{\"event_params\":{\"identity\":\"other@y.com\"}}"}`,
			`{"detail":"{\"event_params\":{\"identity\":\"•••\"}}"}`},
		{"cut short inside the string, as an error keeps it",
			`Error: {"detail":"{\"att_params\":{\"CITY\":\"Pu`,
			`Error: {"detail":"{\"att_params\":\"•••\"`},
		{"a list of events in a string, in words",
			`rejected: "[{\"Email\":\"p@y.com\",\"reason\":\"opted out\"}]" (see docs)`,
			`rejected: "[{\"Email\":\"•••\",\"reason\":\"opted out\"}]" (see docs)`},
		{"serialised twice",
			`{"detail":"{\"inner\":\"{\\\"mobile\\\":\\\"919800000002\\\"}\"}"}`,
			`{"detail":"{\"inner\":\"{\\\"mobile\\\":\\\"•••\\\"}\"}"}`},
		{"braces with nothing to mask are kept as written",
			`{"detail":"unknown {panel} \u00e9\/x","status":"{\"ok\":1}"}`,
			`{"detail":"unknown {panel} \u00e9\/x","status":"{\"ok\":1}"}`},
	} {
		if got := rules.maskText(c.text, nil); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}

	// The same in an event: the page shows it masked, and what was masked
	// is masked in refusals too.
	in := &Inspector{mask: rules}
	shown, values := in.show([]byte(`{"msgid":"9","payload":"{\"identity\":\"q@y.com\",\"plan\":\"gold\"}"}`))
	if strings.Contains(shown, "q@y.com") || !strings.Contains(shown, "gold") || !json.Valid([]byte(shown)) {
		t.Errorf("want the payload's identity masked, the rest shown, as JSON:\n%s", shown)
	}
	if got := rules.maskText("contact q@y.com refused", values); got != "contact ••• refused" {
		t.Errorf("the payload's identity not masked in a refusal: %s", got)
	}
}

// A refusal may quote the event's values as JSON escapes them with only
// ASCII kept (Python's json.dumps by default, Jackson's ESCAPE_NON_ASCII):
// José as Jos\u00e9, in either case of hex.
func TestInspectorMasksTheEventsValuesEscapedToASCII(t *testing.T) {
	rules := defaultMask(t)
	_, values := (&Inspector{mask: rules}).show([]byte(`{"att_params":{"NAME":"José Ñandú","NICK":"😀smile"},"event_params":{"identity":"ravi@example.com"}}`))
	for _, c := range []struct{ name, text, want string }{
		{"lower-case hex", `contact "Jos\u00e9 \u00d1and\u00fa" refused`, `contact "•••" refused`},
		{"upper-case hex", `contact "Jos\u00E9 \u00D1and\u00FA" refused`, `contact "•••" refused`},
		{"outside the BMP, as a surrogate pair", `nick \ud83d\ude00smile invalid`, `nick ••• invalid`},
		{"as written", `contact José Ñandú refused`, `contact ••• refused`},
	} {
		if got := rules.maskText(c.text, values); got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
	}
}

// TestInspectorDefaultMaskIsTheSameEverywhere ties the places that write the
// default mask list to the code's: each shipped config with an inspector
// (its ${NETCORE_INSPECT_MASK:...} default, and the default its comments
// name), the README's environment table (its row) and docs/operating.md
// (the sentence naming the personal fields). An operator reads these; they must not drift.
func TestInspectorDefaultMaskIsTheSameEverywhere(t *testing.T) {
	want := strings.Join(DefaultMaskFields, ",")
	var (
		inEnv     = regexp.MustCompile(`\$\{NETCORE_INSPECT_MASK:([^}]*)\}`)
		inComment = regexp.MustCompile(`#\s*NETCORE_INSPECT_MASK\s(?:[^\[\n]|\n\s*#)*\[([^\]]*)\]`)
		inTable   = regexp.MustCompile("(?m)^\\| `NETCORE_INSPECT_MASK` \\|.*\\| `([^`]*)` \\|$")
		inProse   = regexp.MustCompile(`Personal fields are masked \(([^;]*);`)
	)
	check := func(where, found string) {
		t.Helper()
		if found != want {
			t.Errorf("%s names the default mask %q, the code %q", where, found, want)
		}
	}
	configs := 0
	err := filepath.WalkDir("../../config", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		text, err := os.ReadFile(path)
		if err != nil || !regexp.MustCompile(`(?m)^\s+inspect:`).Match(text) {
			return err
		}
		configs++
		defaults := inEnv.FindAllSubmatch(text, -1)
		if len(defaults) == 0 {
			t.Errorf("%s has an inspector but no ${NETCORE_INSPECT_MASK:...} default", path)
		}
		for _, m := range append(defaults, inComment.FindAllSubmatch(text, -1)...) {
			check(path, string(m[1]))
		}
		return nil
	})
	if err != nil || configs < 6 {
		t.Fatalf("found %d configs with an inspector, want the 6 shipped: %v", configs, err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := inTable.FindSubmatch(readme)
	if row == nil {
		t.Fatal("the README has no NETCORE_INSPECT_MASK row with a default")
	}
	check("the README's environment table", string(row[1]))
	operating, err := os.ReadFile("../../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	prose := inProse.FindSubmatch(operating)
	if prose == nil {
		t.Fatal("docs/operating.md no longer says which personal fields are masked")
	}
	var named []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllSubmatch(prose[1], -1) {
		named = append(named, string(m[1]))
	}
	sorted := slices.Sorted(slices.Values(DefaultMaskFields))
	if slices.Sort(named); !slices.Equal(named, sorted) {
		t.Errorf("the inspector section of docs/operating.md names %q as masked, the code %q", named, sorted)
	}
}

// A value that is not UTF-8 (JSON with stray bytes in a string, which
// encoding/json accepts) is masked too, byte for byte, where a refusal
// quotes it: it did make the page fail, a regular expression of it not
// compiling.
func TestInspectorMasksValuesThatAreNotUTF8(t *testing.T) {
	rules := defaultMask(t)
	_, values := (&Inspector{mask: rules}).show([]byte("{\"identity\":\"\xff\xfeabcd\"}"))
	if got, want := rules.maskText("contact \"\xff\xfeabcd\" refused", values), `contact "•••" refused`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
