package inspector

import "testing"

// TestCatalogExamplesAreMaskedAsTheInspectorMasks: a catalog path is
// masked when it, or an object holding it, is a masked field, through
// arrays and in any case.
func TestCatalogExamplesAreMaskedAsTheInspectorMasks(t *testing.T) {
	rules, err := ParseMask(DefaultMaskFields)
	if err != nil {
		t.Fatal(err)
	}
	rules = append(rules, []string{"custom_params", "user_email"})
	mask := rules.CatalogMask()
	for path, want := range map[string]string{
		"event_params.identity":    masked,
		"EVENT_PARAMS.Email":       masked,
		"att_params.city":          masked,
		"list[].att_params[].city": masked,
		"custom_params.user_email": masked,
		"user_email":               `"x@example.com"`,
		"msgid":                    `"x@example.com"`,
	} {
		if got := mask(path, []byte(`"x@example.com"`)); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
	if Mask(nil).CatalogMask() != nil {
		t.Error("masking off still masks the catalog's examples")
	}
}
