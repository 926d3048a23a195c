package meta

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	m := Meta{Arch: "R50x1", Classes: 2, Labels: []string{"cat", "dog, big"}, Resolution: 128,
		Mean: [3]float32{0.5, 0.25, 0.125}, Std: [3]float32{0.5, 0.5, 0.5}, Layout: "NCHW",
		SourceSHA: "ab", Version: "v1", Variant: "inference"}
	md := m.Map()
	if len(md) != len(Order) {
		t.Errorf("Map has %d keys, Order %d", len(md), len(Order))
	}
	got, err := Parse(md)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("Parse(Map(m)) = %+v, %v; want %+v", got, err, m)
	}
	if _, ok := (Meta{}).Map()[Labels]; ok {
		t.Error("no labels were written as a key")
	}
	// A hand-written map: labels as lines, the mean as a JSON list.
	lines, err := Parse(map[string]string{Labels: "a\r\nb, c\n\n", Mean: "[0.1, 0.2, 0.3]"})
	if err != nil || !reflect.DeepEqual(lines.Labels, []string{"a", "b, c"}) || lines.Mean != [3]float32{0.1, 0.2, 0.3} {
		t.Errorf("Parse of label lines = %+v, %v", lines, err)
	}
}

func TestParseValues(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []float32
	}{
		{"0.5,0.25,0.125", []float32{0.5, 0.25, 0.125}},
		{" [0.5, 0.25, 0.125] ", []float32{0.5, 0.25, 0.125}},
		{"0.5 0.25\t0.125", []float32{0.5, 0.25, 0.125}},
		{"0.5, 0.25 ,0.125", []float32{0.5, 0.25, 0.125}},
		{"2", []float32{2}},
	} {
		got, err := ParseFloats(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseFloats(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", " , ", "[", "[1,\"a\"]", "1,x", "[]", "0.5,,0.5", "0.5,", "NaN", "Inf", "-inf", "1e39", "[1e39]", "1_0", "0x1p-2"} {
		if _, err := ParseFloats(bad); !errors.Is(err, ErrMetadata) {
			t.Errorf("ParseFloats(%q) err = %v, want ErrMetadata", bad, err)
		}
	}
	if v, err := ParseTriple("0.5"); err != nil || v != [3]float32{0.5, 0.5, 0.5} {
		t.Errorf("ParseTriple(0.5) = %v, %v; want it for all three channels", v, err)
	}
	for _, bad := range []string{"1,2", "1,2,3,4"} {
		if _, err := ParseTriple(bad); !errors.Is(err, ErrMetadata) {
			t.Errorf("ParseTriple(%q) err = %v, want ErrMetadata", bad, err)
		}
	}
	// Values given by a user are counted by Triple, whose error is not
	// about metadata.
	if _, err := Triple([]float32{1, 2}); err == nil || errors.Is(err, ErrMetadata) {
		t.Errorf("Triple of two values: %v, want an error outside ErrMetadata", err)
	}
}

func TestParseLabels(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`["tench, Tinca tinca","goldfish"]`, []string{"tench, Tinca tinca", "goldfish"}},
		{"tench, Tinca tinca\r\ngoldfish\n", []string{"tench, Tinca tinca", "goldfish"}},
		{" cat \n\ndog\n\n \n", []string{"cat", "", "dog"}},
		{"", []string{}},
	} {
		got, err := ParseLabels(tc.in)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseLabels(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := ParseLabels(`["a",`); !errors.Is(err, ErrMetadata) {
		t.Errorf("truncated JSON: err = %v, want ErrMetadata", err)
	}
}

func TestParseErrors(t *testing.T) {
	for _, md := range []map[string]string{
		{Classes: "-1"},
		{Classes: "ten"},
		{Resolution: "big"},
		{Resolution: "-1"},
		{Mean: "1,2"},
		{Std: "x"},
		{Std: "a,b,c"},
		{Labels: `[1]`},
		{Labels: `["a",`},
		{Classes: "3", Labels: `["a","b"]`},
	} {
		if _, err := Parse(md); !errors.Is(err, ErrMetadata) {
			t.Errorf("Parse(%v) err = %v, want ErrMetadata", md, err)
		}
	}
}

// FuzzParse: any metadata values give a Meta or an ErrMetadata error, never a
// panic; labels always agree with a non-zero class count, and what parses
// survives Map and Parse again.
func FuzzParse(f *testing.F) {
	f.Add("10", "128", "0.5,0.5,0.5", "[0.5]", `["a","b"]`)
	f.Add("2", "x", "1 2 3", "", "a\nb\n")
	f.Add("3", "128", "[0.1, 0.2, 0.3]", "0.5,0.5,0.5", `["a","b","c"]`)
	f.Add("", "-1", ",,", "[", "[")
	f.Fuzz(func(t *testing.T, classes, res, mean, std, labels string) {
		m, err := Parse(map[string]string{Classes: classes, Resolution: res, Mean: mean, Std: std, Labels: labels})
		if err != nil {
			if !errors.Is(err, ErrMetadata) {
				t.Fatalf("error outside ErrMetadata: %v", err)
			}
			return
		}
		if m.Classes < 0 || m.Resolution < 0 || (m.Classes != 0 && len(m.Labels) != m.Classes) {
			t.Fatalf("accepted inconsistent metadata %+v", m)
		}
		// What parses survives a round trip through Map.
		m2, err := Parse(m.Map())
		if err != nil {
			t.Fatalf("re-parse of %v: %v", m.Map(), err)
		}
		// Labels by count (JSON writes invalid UTF-8 as U+FFFD); the mean
		// unless it holds a NaN (never equal to itself).
		if m2.Classes != m.Classes || m2.Resolution != m.Resolution || len(m2.Labels) != len(m.Labels) || (m.Mean == m.Mean && m2.Mean != m.Mean) {
			t.Fatalf("round trip %+v -> %+v", m, m2)
		}
	})
}

// Labels in metadata are a JSON array; ParseLabels also reads a labels file
// with one name per line.
func ExampleParseLabels() {
	a, _ := ParseLabels(`["tench, Tinca tinca","goldfish"]`)
	b, _ := ParseLabels("tench, Tinca tinca\r\ngoldfish\n")
	fmt.Printf("%q\n%q\n", a, b)
	// Output:
	// ["tench, Tinca tinca" "goldfish"]
	// ["tench, Tinca tinca" "goldfish"]
}
