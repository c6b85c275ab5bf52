package rawjson

import (
	"encoding/json"
	"strings"
	"testing"
)

func BenchmarkValid(b *testing.B) {
	event := `{"channel":"email","msgid":"301","id":12345678901234567890,"subject":"Your cart is waiting, \"Anna\"","url":"https:\/\/example.com\/cart?id=42&utm_source=netcore","event_params":{"ts":240302090200,"identity":"anna@example.com","price":1999.5,"items":[1,2,3]}}`
	post := []byte(`{"email_open":[` + strings.TrimSuffix(strings.Repeat(event+",", 10), ",") + `]}`)
	for _, v := range []struct {
		name  string
		valid func([]byte) bool
	}{{"rawjson", func(data []byte) bool { _, valid, _ := ValidateParts(data, nil); return valid }}, {"encoding-json", json.Valid}} {
		b.Run(v.name, func(b *testing.B) {
			b.SetBytes(int64(len(post)))
			for b.Loop() {
				if !v.valid(post) {
					b.Fatal("the post is not valid")
				}
			}
		})
	}
}
