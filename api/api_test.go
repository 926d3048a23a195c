package api_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"

	"github.com/bitrun/bitrun/api"
)

// bodies is every wire body of the package, each filled with non-zero
// values by fill.
var bodies = []any{
	&api.Error{}, &api.Prediction{}, &api.PredictResult{}, &api.PredictResponse{},
	&api.ModelEntry{}, &api.ModelList{}, &api.Healthz{}, &api.Live{}, &api.Ready{}, &api.ModelReady{},
	&api.ServerMetadata{}, &api.TensorMetadata{}, &api.Preprocessing{}, &api.ModelMetadata{},
	&api.StatDuration{}, &api.InferStatistics{}, &api.ModelStatistics{}, &api.Statistics{},
	&api.RepositoryIndexRequest{}, &api.RepositoryModel{}, &api.RepositoryLoad{},
	&api.Tensor{}, &api.RequestedOutput{}, &api.InferRequest{}, &api.InferResponse{},
}

// fill sets every exported field to a non-zero value (slices get two
// elements), so a field that does not survive JSON shows up.
func fill(v reflect.Value, n int) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), n)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if f.IsExported() && f.Tag.Get("json") != "-" {
				fill(v.Field(i), n+i)
			}
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[json.RawMessage]() {
			v.SetBytes([]byte(`[1,2.5]`))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), n+i)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("k"), reflect.ValueOf(any(float64(n))))
		v.Set(m)
	case reflect.String:
		v.SetString("s" + string(rune('a'+n%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(n + 1))
	case reflect.Uint64, reflect.Uint32, reflect.Uint:
		v.SetUint(uint64(n + 1))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(n) + 0.5)
	}
}

// TestRoundTrip: every body survives encoding and decoding unchanged, with
// no field left out by a tag (issue 17 item 1). The server and the client
// both use these types, so this is the round trip between them; the
// client's tests run every call against a real serve.Server.
func TestRoundTrip(t *testing.T) {
	for _, b := range bodies {
		v := reflect.ValueOf(b)
		fill(v, 0)
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("%T: %v", b, err)
		}
		back := reflect.New(v.Type().Elem())
		if err := json.Unmarshal(enc, back.Interface()); err != nil {
			t.Fatalf("%T: %v", b, err)
		}
		if !reflect.DeepEqual(back.Interface(), b) {
			t.Errorf("%T does not round-trip:\n%s\n%+v", b, enc, back.Elem().Interface())
		}
	}
}

func TestBinaryBody(t *testing.T) {
	req := api.InferRequest{ID: "x", Inputs: []api.Tensor{
		api.BinaryFP32("a", []int64{1, 2}, []float32{1.5, -2}),
		api.Uint8("b", []int64{3}, []byte{1, 2, 255}, false),
		api.Uint8("c", []int64{2}, []byte{7, 8}, true),
	}}
	body, n, err := api.EncodeBody(req, req.Inputs)
	if err != nil || n < 0 {
		t.Fatal(n, err)
	}
	head, rest, err := api.SplitBody(body, itoa(n))
	if err != nil {
		t.Fatal(err)
	}
	var got api.InferRequest
	if err := json.Unmarshal(head, &got); err != nil {
		t.Fatal(err)
	}
	if err := api.AttachBinary(got.Inputs, rest); err != nil {
		t.Fatal(err)
	}
	a, _ := got.Inputs[0].Float32s()
	b, _ := got.Inputs[1].Uint8s()
	c, _ := got.Inputs[2].Uint8s()
	if !slices.Equal(a, []float32{1.5, -2}) || !slices.Equal(b, []byte{1, 2, 255}) || !slices.Equal(c, []byte{7, 8}) {
		t.Fatalf("got %v %v %v", a, b, c)
	}
	s := api.Tensor{Datatype: "BYTES", Raw: api.EncodeStrings([]string{"0.5:1:cat", ""})}
	if v, err := s.Strings(); err != nil || !slices.Equal(v, []string{"0.5:1:cat", ""}) {
		t.Fatalf("strings %q %v", v, err)
	}

	// Malformed lengths are ErrMalformed.
	for _, tc := range []struct {
		header string
		sizes  []any
	}{
		{"-1", nil}, {"abc", nil}, {itoa(len(body) + 1), nil},
		{itoa(n), []any{-4, 9, 2}},      // negative size
		{itoa(n), []any{8, 9, 2}},       // past the body
		{itoa(n), []any{8, 3, 1}},       // bytes left over
		{itoa(n), []any{8, 3.5, 2}},     // not an integer
		{itoa(n), []any{8, "3", 2}},     // not a number
		{itoa(n), []any{8, 1000, 2}},    // way past
		{itoa(n), []any{1 << 40, 3, 2}}, // huge
	} {
		head, rest, err := api.SplitBody(body, tc.header)
		if err == nil {
			var r api.InferRequest
			if err = json.Unmarshal(head, &r); err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.sizes {
				r.Inputs[i].Parameters = api.Parameters{api.ParamBinaryDataSize: s}
				r.Inputs[i].Data = nil
			}
			err = api.AttachBinary(r.Inputs, rest)
		}
		if !errors.Is(err, api.ErrMalformed) {
			t.Errorf("header %s sizes %v: %v, want ErrMalformed", tc.header, tc.sizes, err)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// FuzzBinaryBody: SplitBody and AttachBinary never panic and never hand a
// tensor bytes outside the body.
func FuzzBinaryBody(f *testing.F) {
	f.Add([]byte(`{"inputs":[{"name":"a","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}abcd`), "95")
	f.Add([]byte(`{"inputs":[]}`), "")
	f.Add([]byte(`{}`), "-3")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		head, rest, err := api.SplitBody(body, header)
		if err != nil {
			return
		}
		var r api.InferRequest
		if json.Unmarshal(head, &r) != nil {
			return
		}
		if api.AttachBinary(r.Inputs, rest) != nil {
			return
		}
		total := 0
		for _, in := range r.Inputs {
			total += len(in.Raw)
		}
		if total != len(rest) {
			t.Fatalf("tensors hold %d bytes of %d", total, len(rest))
		}
	})
}
