package netcorepost

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	formType = "application/x-www-form-urlencoded"
	jsonType = "application/json"
)

// postSummary writes a post as panel=[event,event];panel=[...] so that a
// whole decode result fits in one table cell.
func postSummary(p *Post) string {
	var b strings.Builder
	for i, panel := range p.Panels {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(panel.Name + "=[")
		b.Write(bytes.Join(panel.Events, []byte(",")))
		b.WriteByte(']')
	}
	return b.String()
}

// samplesDir holds realistic Netcore posts, each as a form and as JSON; the
// end-to-end tests post the same files.
const samplesDir = "../../tests/testdata/samples"

func TestDecodeBodySamples(t *testing.T) {
	samples := []struct {
		name   string
		panels []string
		counts []int
	}{
		{"custom_activity", []string{"product_search"}, []int{1}},
		{"app_identify", []string{"mkt_app"}, []int{1}},
		{"sms_click", []string{"sms_clicks"}, []int{1}},
		{"two_panels", []string{"cart_abandon", "email_open"}, []int{2, 1}},
	}
	for _, s := range samples {
		jsonBody, err := os.ReadFile(filepath.Join(samplesDir, s.name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		formBody, err := os.ReadFile(filepath.Join(samplesDir, s.name+".form"))
		if err != nil {
			t.Fatal(err)
		}
		form, err := url.ParseQuery(string(formBody))
		if err != nil {
			t.Fatal(err)
		}
		formJSON := []byte(form.Get("data"))

		for _, v := range []struct {
			how, contentType string
			body, data       []byte // data: the JSON the events must come from
		}{
			{"form", formType, formBody, formJSON},
			{"form without content type", "", formBody, formJSON},
			{"json", jsonType, jsonBody, jsonBody},
			{"json without content type", "", jsonBody, jsonBody},
		} {
			t.Run(s.name+"/"+v.how, func(t *testing.T) {
				post, err := DecodeBody(v.contentType, v.body)
				if err != nil {
					t.Fatalf("DecodeBody: %v", err)
				}
				if !bytes.Equal(post.Data, v.data) {
					t.Errorf("Data = %s, want %s", post.Data, v.data)
				}
				var want map[string][]json.RawMessage
				if err := json.Unmarshal(v.data, &want); err != nil {
					t.Fatal(err)
				}
				if len(post.Panels) != len(s.panels) {
					t.Fatalf("got %d panels, want %v", len(post.Panels), s.panels)
				}
				total := 0
				for i, p := range post.Panels {
					total += s.counts[i]
					if p.Name != s.panels[i] || len(p.Events) != s.counts[i] {
						t.Errorf("panel %d = %q with %d events, want %q with %d", i, p.Name, len(p.Events), s.panels[i], s.counts[i])
						continue
					}
					for j, ev := range p.Events {
						if !bytes.Equal(ev, want[p.Name][j]) {
							t.Errorf("panel %q event %d =\n%s\nwant\n%s", p.Name, j, ev, want[p.Name][j])
						}
					}
				}
				if post.EventCount() != total {
					t.Errorf("EventCount() = %d, want %d", post.EventCount(), total)
				}
			})
		}

		// The form carries the same JSON as the .json file, only compacted.
		var compact bytes.Buffer
		if err := json.Compact(&compact, jsonBody); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(compact.Bytes(), formJSON) {
			t.Errorf("%s: form data %s differs from the JSON file %s", s.name, formJSON, compact.Bytes())
		}
	}
}

func TestDecodeBodyAccepts(t *testing.T) {
	big := `{"p":[{"id":12345678901234567890123,"price":1.000000000000000000001,"z":-0.0e+10}]}`
	tests := []struct {
		name, contentType, body string
		want                    string // postSummary
		events                  int
	}{
		{
			name: "other form fields ignored", contentType: formType,
			body: "a=1&data=" + url.QueryEscape(`{"p":[{"k":"v"}]}`) + "&b=%ZZ&%ZZ=1&data2=x",
			want: `p=[{"k":"v"}]`, events: 1,
		},
		{
			name: "percent-encoded field name", contentType: formType,
			body: "%64ata=" + url.QueryEscape(`{"p":[{}]}`),
			want: `p=[{}]`, events: 1,
		},
		{
			name: "unencoded form with & in a value", contentType: formType,
			body: `data={"p":[{"CITY":"Thane&Kalyan"}]}`,
			want: `p=[{"CITY":"Thane&Kalyan"}]`, events: 1,
		},
		{
			name: "unencoded form without content type",
			body: `data={"p":[{"CITY":"Thane&Kalyan"}]}`,
			want: `p=[{"CITY":"Thane&Kalyan"}]`, events: 1,
		},
		{
			name: "unencoded form with &data= in a value", contentType: formType,
			body: `data={"p":[{"q":"a&data=b"}]}`,
			want: `p=[{"q":"a&data=b"}]`, events: 1,
		},
		{
			name: "unencoded form with a bare %", contentType: formType,
			body: `data={"p":[{"off":"50%"}]}`,
			want: `p=[{"off":"50%"}]`, events: 1,
		},
		{
			// A raw '{' says the value was not form-encoded: '+' and %XX are
			// bytes of the JSON, whether or not a raw '&' is in it too.
			name: "unencoded form keeps + and %XX", contentType: formType,
			body: `data={"p":[{"mobile":"+919800000001","email":"a+b@example.com","n":"%20%2B%"}]}`,
			want: `p=[{"mobile":"+919800000001","email":"a+b@example.com","n":"%20%2B%"}]`, events: 1,
		},
		{
			name: "unencoded form with + and &", contentType: formType,
			body: `data={"p":[{"mobile":"+91","city":"Thane&Kalyan"}]}`,
			want: `p=[{"mobile":"+91","city":"Thane&Kalyan"}]`, events: 1,
		},
		{
			name: "unencoded form with fields around it", contentType: formType,
			body: `a=%ZZ&data={"p":[{"q":"x+y=z&w"}]}&b=1&%ZZ=2`,
			want: `p=[{"q":"x+y=z&w"}]`, events: 1,
		},
		{
			name: "unencoded form with white space around it", contentType: formType,
			body: "data=\n {\"p\":[{\"a\":\"+\"}]}\r\n&b=1",
			want: `p=[{"a":"+"}]`, events: 1,
		},
		{
			// Read as a form this decodes to another post (panel "q" a
			// number); its raw '{' and '"' say it was not form-encoded.
			name: "unencoded form whose decoding is other JSON", contentType: formType,
			body: `data={"p":[{"s":"%22}],%22q%22:1,%22r%22:[{%22t%22:%22"}]}`,
			want: `p=[{"s":"%22}],%22q%22:1,%22r%22:[{%22t%22:%22"}]`, events: 1,
		},
		{
			// Begun encoded, it is decoded, though some characters were left
			// raw (JavaScript's encodeURI leaves ':' and '+').
			name: "encoded in part, starting encoded", contentType: formType,
			body: `data=%7B%22p%22:%5B%7B%22n%22:"a+b%2Bc"%7D%5D%7D`,
			want: `p=[{"n":"a b+c"}]`, events: 1,
		},
		{
			name: "+ in a form means space", contentType: formType,
			body: "data=%7B%22p%22%3A%5B%7B%22n%22%3A%22a+b%22%7D%5D%7D",
			want: `p=[{"n":"a b"}]`, events: 1,
		},
		{
			name: "%2B in a form is a plus", contentType: formType,
			body: "data=%7B%22p%22%3A%5B%7B%22n%22%3A%22a%2Bb%22%7D%5D%7D",
			want: `p=[{"n":"a+b"}]`, events: 1,
		},
		{
			name: "form with charset", contentType: formType + "; charset=UTF-8",
			body: "data=" + url.QueryEscape(`{"p":[{"a":1}]}`),
			want: `p=[{"a":1}]`, events: 1,
		},
		{name: "json with charset", contentType: "application/json; charset=utf-8", body: `{"p":[{"a":1}]}`, want: `p=[{"a":1}]`, events: 1},
		{name: "json media type in capitals", contentType: "Application/JSON", body: `{"p":[{"a":1}]}`, want: `p=[{"a":1}]`, events: 1},
		{name: "+json media type", contentType: "application/vnd.netcore+json", body: `{"p":[{"a":1}]}`, want: `p=[{"a":1}]`, events: 1},
		{name: "text/plain sniffed as json", contentType: "text/plain", body: "\n  {\"p\":[{}]}", want: `p=[{}]`, events: 1},
		{name: "octet-stream sniffed as form", contentType: "application/octet-stream", body: "data=%7B%22p%22%3A%5B%5D%7D", want: `p=[]`},
		{name: "invalid content type parameter ignored", contentType: "application/json; charset", body: `{"p":[{}]}`, want: `p=[{}]`, events: 1},
		{name: "unparsable content type sniffed as json", contentType: "application/json, text/plain", body: `{"p":[{}]}`, want: `p=[{}]`, events: 1},
		{name: "unparsable content type sniffed as form", contentType: ";", body: "data=%7B%22p%22%3A%5B%5D%7D", want: `p=[]`},
		{name: "empty panel array", contentType: jsonType, body: `{"p":[]}`, want: `p=[]`},
		{name: "empty panel among others", contentType: jsonType, body: `{"a":[],"b":[{}]}`, want: `a=[];b=[{}]`, events: 1},
		{name: "empty object", contentType: jsonType, body: `{}`, want: ``},
		{name: "empty object in a form", contentType: formType, body: `data=%7B%7D`, want: ``},
		{name: "escaped panel name", contentType: jsonType, body: `{"\u0070anel":[{}]}`, want: `panel=[{}]`, events: 1},
		{name: "duplicate panels both kept", contentType: jsonType, body: `{"p":[{"a":1}],"p":[{"a":2}]}`, want: `p=[{"a":1}];p=[{"a":2}]`, events: 2},
		{name: "event whitespace kept", contentType: jsonType, body: "{ \"p\" : [ { \"a\" : [ 1 , 2 ] } , {}\n] }", want: `p=[{ "a" : [ 1 , 2 ] },{}]`, events: 2},
		{name: "big numbers in json", contentType: jsonType, body: big, want: `p=[{"id":12345678901234567890123,"price":1.000000000000000000001,"z":-0.0e+10}]`, events: 1},
		{name: "big numbers in a form", contentType: formType, body: "data=" + url.QueryEscape(big), want: `p=[{"id":12345678901234567890123,"price":1.000000000000000000001,"z":-0.0e+10}]`, events: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			post, err := DecodeBody(tt.contentType, []byte(tt.body))
			if err != nil {
				t.Fatalf("DecodeBody(%q, %q): %v", tt.contentType, tt.body, err)
			}
			if got := postSummary(post); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if post.EventCount() != tt.events {
				t.Errorf("EventCount() = %d, want %d", post.EventCount(), tt.events)
			}
		})
	}
}

func TestDecodeBodyRejects(t *testing.T) {
	deep := `{"p":[{"a":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}]}`
	tests := []struct {
		name, contentType, body string
		status                  int
		msg                     string
	}{
		{name: "form without data field", contentType: formType, body: "foo=bar&x=1", status: 400, msg: "form has no data field"},
		// An unencoded data field is refused for its JSON's shape, as any.
		{name: "unencoded percent sign, wrong shape", contentType: formType, body: `data={"p":"100%"}`, status: 400, msg: `panel "p" is a JSON string`},
		{name: "unencoded ampersand, wrong shape", contentType: formType, body: `data=["a&b"]`, status: 400, msg: "data is a JSON array, not an object"},
		// A data field starting with a raw '{' is JSON as it stands, or refused.
		// Where it ends is counted in the body, as the sender sent it.
		{name: "unencoded JSON with more after it", contentType: formType, body: `data={"p":[]}x&b=1`, status: 400, msg: `ends 13 bytes into the body, followed by "x&b=1"`},
		{name: "unencoded JSON after another field", contentType: formType, body: `x=1&data= {"p":[]}}&b=1`, status: 400, msg: `ends 18 bytes into the body, followed by "}&b=1"`},
		{name: "unencoded JSON then a second data field", contentType: formType, body: `data={"p":[{"a":"&data="}]}&data=%7B%7D`, status: 400, msg: "more than one data field"},
		{name: "unencoded JSON cut short", contentType: formType, body: `data={"p":[{"a":"x&y=1`, status: 400, msg: "unexpected end of JSON input"},
		{name: "encoded in part, starting raw", contentType: formType, body: `data={%22p%22:[]}`, status: 400, msg: "(at byte 2); the data field starts with a raw '{', so it is read as JSON as it stands: percent-encode all of it, or none"},
		{name: "empty body", body: "", status: 400, msg: "form has no data field"},
		{name: "json posted as a form", contentType: formType, body: `{"p":[]}`, status: 400, msg: "form has no data field"},
		{name: "two data fields", contentType: formType, body: "data=%7B%7D&x=1&data=%7B%7D", status: 400, msg: "more than one data field"},
		{name: "invalid percent-encoding", contentType: formType, body: "data=%7B%ZZ%7D", status: 400, msg: "invalid percent-encoding"},
		{name: "truncated percent-encoding", contentType: formType, body: "data=%7B%7", status: 400, msg: "invalid percent-encoding"},
		{name: "empty data field", contentType: formType, body: "data=", status: 400, msg: "not valid JSON"},
		{name: "invalid JSON in a form", contentType: formType, body: "data=%7B%22p%22%3A", status: 400, msg: "not valid JSON"},
		{name: "invalid JSON names the offset", contentType: jsonType, body: `{"p":[}`, status: 400, msg: "invalid character '}' looking for beginning of value (at byte 7)"},
		{name: "truncated JSON", contentType: jsonType, body: `{"p":[{}`, status: 400, msg: "unexpected end of JSON input"},
		{name: "trailing garbage", contentType: jsonType, body: `{"p":[]} x`, status: 400, msg: "(at byte 10)"},
		{name: "top level array", contentType: jsonType, body: `[{"a":1}]`, status: 400, msg: "data is a JSON array, not an object of panels"},
		{name: "top level array in a form", contentType: formType, body: "data=%5B%5D", status: 400, msg: "data is a JSON array"},
		{name: "top level string", contentType: jsonType, body: `"{}"`, status: 400, msg: "data is a JSON string"},
		{name: "top level number", contentType: jsonType, body: ` 42`, status: 400, msg: "data is a JSON number"},
		{name: "top level null", contentType: jsonType, body: `null`, status: 400, msg: "data is a JSON null"},
		{name: "panel is an object", contentType: jsonType, body: `{"p":{"a":1}}`, status: 400, msg: `panel "p" is a JSON object, not an array of events`},
		{name: "panel is a string", contentType: jsonType, body: `{"ok":[],"p":"[]"}`, status: 400, msg: `panel "p" is a JSON string`},
		{name: "event is a string", contentType: jsonType, body: `{"p":[{},{},"x"]}`, status: 400, msg: `panel "p" event 2 is a JSON string, not an object`},
		{name: "event is an array in a later panel", contentType: jsonType, body: `{"ok":[{}],"bad":[{},[{}]]}`, status: 400, msg: `panel "bad" event 1 is a JSON array`},
		{name: "event is null", contentType: jsonType, body: `{"p":[null]}`, status: 400, msg: `panel "p" event 0 is a JSON null`},
		{name: "invalid UTF-8 in json", contentType: jsonType, body: "{\"p\":[{\"a\":\"\xff\"}]}", status: 400, msg: "not valid UTF-8 (first bad byte at offset 12)"},
		{name: "invalid UTF-8 in a key", body: "{\"p\xc3\":[]}", status: 400, msg: "not valid UTF-8 (first bad byte at offset 3)"},
		{name: "truncated UTF-8 at the end", contentType: jsonType, body: "{}\xe2\x82", status: 400, msg: "not valid UTF-8 (first bad byte at offset 2)"},
		{name: "invalid UTF-8 in a form", contentType: formType, body: "data=%7B%22p%22%3A%5B%7B%22a%22%3A%22%FF%22%7D%5D%7D", status: 400, msg: "not valid UTF-8"},
		{name: "invalid UTF-8 in an unencoded form", contentType: formType, body: "data={\"p\":[{\"a\":\"\xff&b\"}]}", status: 400, msg: "not valid UTF-8"},
		{name: "deep nesting", contentType: jsonType, body: deep, status: 400, msg: "not valid JSON"},
		{name: "deep nesting in a form", contentType: formType, body: "data=" + url.QueryEscape(deep), status: 400, msg: "not valid JSON"},
		{name: "multipart", contentType: "multipart/form-data; boundary=x", body: "--x\r\n", status: 415, msg: `unsupported content type "multipart/form-data; boundary=x"`},
		{name: "bare word content type", contentType: "json", body: `{"p":[]}`, status: 415, msg: `unsupported content type "json"`},
		{name: "xml", contentType: "text/xml", body: `<data/>`, status: 415, msg: `unsupported content type "text/xml"`},
		{name: "xml with a JSON body", contentType: "application/xml", body: `{"p":[]}`, status: 415, msg: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			post, err := DecodeBody(tt.contentType, []byte(tt.body))
			var rej *RejectError
			if !errors.As(err, &rej) {
				t.Fatalf("DecodeBody = %v, %v; want a *RejectError", post, err)
			}
			if post != nil {
				t.Errorf("rejected post still returned: %+v", post)
			}
			if rej.Status != tt.status || !strings.Contains(rej.Error(), tt.msg) {
				t.Errorf("got %d %q, want %d containing %q", rej.Status, rej.Error(), tt.status, tt.msg)
			}
		})
	}
}

func TestDecodeDataMatchesDecodeBody(t *testing.T) {
	for _, body := range []string{`{"p":[{"a":1}],"q":[]}`, `[]`, `{"p":[1]}`, "{\"p\":[\"\xff\"]}"} {
		fromData, errData := DecodeData([]byte(body))
		fromBody, errBody := DecodeBody(jsonType, []byte(body))
		if (errData == nil) != (errBody == nil) || (errData != nil && errData.Error() != errBody.Error()) {
			t.Errorf("%q: DecodeData error %v, DecodeBody error %v", body, errData, errBody)
		}
		if errData == nil && postSummary(fromData) != postSummary(fromBody) {
			t.Errorf("%q: DecodeData %s, DecodeBody %s", body, postSummary(fromData), postSummary(fromBody))
		}
	}
}

// Every cut of a sample, as JSON and as a form, is either a post or a 400:
// never a panic, never another error.
func TestDecodeBodyTruncatedSamples(t *testing.T) {
	for _, name := range []string{"custom_activity.json", "two_panels.form"} {
		body, err := os.ReadFile(filepath.Join(samplesDir, name))
		if err != nil {
			t.Fatal(err)
		}
		for n := range len(body) {
			_, err := DecodeBody("", body[:n])
			var rej *RejectError
			if err != nil && (!errors.As(err, &rej) || rej.Status != http.StatusBadRequest) {
				t.Fatalf("%s cut at %d: %v", name, n, err)
			}
		}
	}
}

// queryUnescape stands for url.QueryUnescape on the data field; checked
// against it on random strings made mostly of what matters there: escapes
// (valid, cut short, not hexadecimal), plus signs, and runs of plain bytes
// around the eight-byte steps of plainRun.
func TestQueryUnescapeAgreesWithNetURL(t *testing.T) {
	pieces := []string{"%22", "%7B", "%7d", "%2C", "%3A", "+", "%", "%2", "%G1", "%2g", "a", "abcdefg", "abcdefghijklmnop", "é", "%E2%82%AC", "&", "="}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 200_000 {
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		in := b.String()
		want, wantErr := url.QueryUnescape(in)
		got, err := queryUnescape([]byte("prefix:"), []byte(in))
		if (err != nil) != (wantErr != nil) || (err == nil && string(got) != "prefix:"+want) {
			t.Fatalf("queryUnescape(%q) = %q, %v; url.QueryUnescape gives %q, %v", in, got, err, want, wantErr)
		}
	}
}

// Compact says whether a post needs compacting before its events are
// stored: only white space outside strings makes it so.
func TestDecodeBodySaysWhetherThePostIsCompact(t *testing.T) {
	for body, want := range map[string]bool{
		`{"p":[{"a":"x y","b":[1,2]}]}`:                 true,
		`{"p":[{"a":"x y","b":[1, 2]}]}`:                false,
		`{"p":[{"a":1}]}` + "\n":                        false,
		"data=" + url.QueryEscape(`{"p":[{"a":"\n"}]}`): true,
		"data=" + url.QueryEscape(`{"p": [{"a":1}]}`):   false,
	} {
		contentType := jsonType
		if strings.HasPrefix(body, "data=") {
			contentType = formType
		}
		post, err := DecodeBody(contentType, []byte(body))
		if err != nil {
			t.Fatalf("DecodeBody(%q): %v", body, err)
		}
		if post.Compact != want {
			t.Errorf("DecodeBody(%q).Compact = %v, want %v", body, post.Compact, want)
		}
	}
}
