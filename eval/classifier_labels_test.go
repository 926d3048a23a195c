package eval

import (
	"reflect"
	"testing"

	"github.com/bitrun/bitrun/export/meta"
)

// Label indices must agree with the exporter's parser: a leading blank line
// is a label of its own and spaces inside lines are kept.
func TestParseLabelsAgreesWithExport(t *testing.T) {
	for _, in := range []string{
		"\ncat\ndog\n",
		" tench, Tinca tinca\ngoldfish \r\n\n",
		`["a, b", "c"]`,
	} {
		got, err := ParseLabels(in)
		if err != nil {
			t.Fatalf("ParseLabels(%q): %v", in, err)
		}
		want, err := meta.ParseLabels(in)
		if err != nil {
			t.Fatalf("meta.ParseLabels(%q): %v", in, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseLabels(%q) = %q, export gives %q", in, got, want)
		}
	}
	if _, err := ParseLabels("[not json"); err == nil {
		t.Error("malformed JSON labels accepted")
	}
}
