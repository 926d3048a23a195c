package onnxpb

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// sample is a model using every field the writer emits.
func sample() *Model {
	w := FloatTensor("w", []int64{2, 3}, []float32{1, -2, 3.5, 0, float32(math.Inf(1)), -0.25})
	ext := &Tensor{Name: "big", DataType: Float, Dims: []int64{1024}, DataLocation: LocationExternal,
		ExternalData: []StringStringEntry{{"location", "m.onnx.data"}, {"offset", "4096"}, {"length", "4096"}}}
	return &Model{
		IRVersion:       8,
		OpsetImport:     []OpsetID{{Domain: "", Version: 17}, {Domain: "com.example", Version: 1}},
		ProducerName:    "bitrun",
		ProducerVersion: "v1.2.3",
		Domain:          "org.bitrun",
		ModelVersion:    3,
		DocString:       "doc",
		MetadataProps:   []StringStringEntry{{"bitrun.arch", "tiny"}, {"empty", ""}, {"bitrun.labels", `["a","b"]`}},
		Graph: &Graph{
			Name:      "g",
			DocString: "graph doc",
			Nodes: []*Node{
				{Name: "n1", OpType: "Conv", Inputs: []string{"x", "w", ""}, Outputs: []string{"y"},
					Attributes: []*Attribute{IntsAttr("pads", 1, 1, -1, 0), IntAttr("group", 0), FloatAttr("alpha", -1.5),
						StringAttr("mode", "constant"), {Name: "fs", Type: AttrFloats, Floats: []float32{0.5, 2}},
						{Name: "ss", Type: AttrStrings, Strings: [][]byte{[]byte("p"), []byte("q")}},
						TensorAttr("value", Int64Tensor("", []int64{2}, []int64{-7, 1 << 40}))}},
				{Name: "n2", OpType: "Relu", Domain: "", Inputs: []string{"y"}, Outputs: []string{"z"}, DocString: "relu"},
			},
			Initializers: []*Tensor{w, ext, Int64Tensor("shape", []int64{3}, []int64{0, 8, -1})},
			Inputs: []*ValueInfo{{Name: "x", ElemType: Float, HasShape: true,
				Shape: []Dim{{Param: "N"}, {Value: 3}, {Param: "H"}, {Value: 0}}}},
			Outputs:   []*ValueInfo{{Name: "z", ElemType: Float, HasShape: true, Shape: []Dim{{Param: "N"}, {Value: 10}}}},
			ValueInfo: []*ValueInfo{{Name: "y", ElemType: Float, DocString: "unknown rank"}},
		},
	}
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	b, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != m.Size() {
		t.Fatalf("Marshal wrote %d bytes, Size says %d", len(b), m.Size())
	}
	got, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Fatalf("round trip differs:\ngot  %+v\nwant %+v", got.Graph.Nodes[0], m.Graph.Nodes[0])
	}
	again, _ := got.Marshal()
	if !bytes.Equal(again, b) {
		t.Fatal("re-marshalling the decoded model gives different bytes")
	}
	if v := got.Opset("ai.onnx"); v != 17 {
		t.Errorf("Opset(ai.onnx) = %d, want 17", v)
	}
	if got.Metadata()["bitrun.arch"] != "tiny" {
		t.Errorf("metadata %v", got.Metadata())
	}
	f, err := got.Graph.Initializers[0].Floats()
	if err != nil || !reflect.DeepEqual(f, []float32{1, -2, 3.5, 0, float32(math.Inf(1)), -0.25}) {
		t.Errorf("Floats = %v, %v", f, err)
	}
	if _, err := got.Graph.Initializers[1].Floats(); !errors.Is(err, ErrExternal) {
		t.Errorf("Floats of external tensor: %v, want ErrExternal", err)
	}
	loc, off, n, err := got.Graph.Initializers[1].External()
	if err != nil || loc != "m.onnx.data" || off != 4096 || n != 4096 {
		t.Errorf("External = %q %d %d %v", loc, off, n, err)
	}
	s, err := got.Graph.Initializers[2].Int64s()
	if err != nil || !reflect.DeepEqual(s, []int64{0, 8, -1}) {
		t.Errorf("Int64s = %v, %v", s, err)
	}
}

// TestWireGolden pins the encoding of small messages to bytes worked out by
// hand from onnx.proto's field numbers.
func TestWireGolden(t *testing.T) {
	cases := []struct {
		name string
		m    *Model
		want string
	}{
		// ir_version (1, varint) = 8; opset_import (8, bytes) { version (2) = 17 }.
		{"opset", &Model{IRVersion: 8, OpsetImport: []OpsetID{{Version: 17}}}, "0808" + "4202" + "1011"},
		// metadata_props (14 -> tag 0x72) { key (1) "k", value (2) "v" }.
		{"metadata", &Model{IRVersion: 1, MetadataProps: []StringStringEntry{{"k", "v"}}}, "0801" + "7206" + "0a016b" + "120176"},
		// graph (7 -> 0x3a) { input (11 -> 0x5a) { name "x", type (2) { tensor_type (1) {
		// elem_type (1) = 1, shape (2) { dim (1) { dim_param (2) "N" } } } } } }.
		{"value info", &Model{IRVersion: 1, Graph: &Graph{Inputs: []*ValueInfo{{Name: "x", ElemType: Float, HasShape: true, Shape: []Dim{{Param: "N"}}}}}},
			"0801" + "3a12" + "5a10" + "0a0178" + "120b" + "0a09" + "0801" + "1205" + "0a03" + "12014e"},
		// graph { initializer (5 -> 0x2a) { dims (1, packed) [2], data_type (2) = 1,
		// name (8 -> 0x42) "w", raw_data (9 -> 0x4a) 8 bytes } }.
		{"tensor", &Model{IRVersion: 1, Graph: &Graph{Initializers: []*Tensor{FloatTensor("w", []int64{2}, []float32{1, -2})}}},
			"0801" + "3a14" + "2a12" + "0a0102" + "1001" + "4201" + "77" + "4a08" + "0000803f" + "000000c0"},
		// graph { node (1 -> 0x0a) { input "a", output "b", op_type (4) "Relu",
		// attribute (5) { name "k", i (3) = 0, type (20 -> 0xa0 0x01) = INT } } }.
		{"node", &Model{IRVersion: 1, Graph: &Graph{Nodes: []*Node{{Inputs: []string{"a"}, Outputs: []string{"b"}, OpType: "Relu", Attributes: []*Attribute{IntAttr("k", 0)}}}}},
			"0801" + "3a18" + "0a16" + "0a0161" + "120162" + "2204" + "52656c75" + "2a08" + "0a016b" + "1800" + "a00102"},
	}
	for _, c := range cases {
		b, err := c.m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
}

func TestReadHeader(t *testing.T) {
	m := sample()
	b, _ := m.Marshal()
	// Via a plain reader (skips by reading) and a file (skips by seeking).
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, r := range map[string]io.Reader{"reader": bytes.NewBufferString(string(b)), "file": f} {
		h, err := ReadHeader(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.IRVersion != 8 || h.ProducerName != "bitrun" || h.ProducerVersion != "v1.2.3" || h.ModelVersion != 3 ||
			h.Domain != "org.bitrun" || h.DocString != "doc" || !reflect.DeepEqual(h.OpsetImport, m.OpsetImport) ||
			!reflect.DeepEqual(h.MetadataProps, m.MetadataProps) {
			t.Errorf("%s: header %+v", name, h)
		}
		if h.GraphBytes != int64(m.Graph.size()) {
			t.Errorf("%s: GraphBytes %d, want %d", name, h.GraphBytes, m.Graph.size())
		}
		if h.Metadata()["bitrun.labels"] != `["a","b"]` {
			t.Errorf("%s: metadata %v", name, h.Metadata())
		}
	}
}

func TestMalformed(t *testing.T) {
	good, _ := sample().Marshal()
	cases := map[string][]byte{
		"truncated":        good[:len(good)-3],
		"bad tag":          {0x00},
		"overlong varint":  {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"length past end":  {0x3a, 0x7f, 0x00},
		"wrong wire type":  {0x3d, 0, 0, 0, 0}, // graph as fixed32
		"end group":        {0x0c},
		"bad packed float": {0x3a, 0x06, 0x2a, 0x04, 0x22, 0x02, 0x00, 0x00},
	}
	for name, b := range cases {
		if _, err := Unmarshal(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("Unmarshal %s: %v, want ErrInvalid", name, err)
		}
	}
	for _, name := range []string{"truncated", "bad tag", "overlong varint", "length past end", "end group"} {
		if _, err := ReadHeader(bytes.NewReader(cases[name])); !errors.Is(err, ErrInvalid) {
			t.Errorf("ReadHeader %s: %v, want ErrInvalid", name, err)
		}
	}
	// A metadata field claiming more than MaxHeaderBytes is refused before allocating.
	huge := []byte{0x72, 0x80, 0x80, 0x80, 0x40} // 128 MiB
	if _, err := ReadHeader(bytes.NewReader(huge)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadHeader huge metadata: %v, want ErrTooLarge", err)
	}
	// Deeply nested graphs (graph attribute inside a node inside a graph ...) are refused.
	g := &Graph{Name: "leaf"}
	for i := 0; i < 40; i++ {
		g = &Graph{Nodes: []*Node{{OpType: "If", Attributes: []*Attribute{{Name: "then_branch", Type: AttrGraph, G: g}}}}}
	}
	deep, _ := (&Model{IRVersion: 8, Graph: g}).Marshal()
	if _, err := Unmarshal(deep); !errors.Is(err, ErrInvalid) {
		t.Errorf("Unmarshal deep: %v, want ErrInvalid", err)
	}
}

func TestTensorChecks(t *testing.T) {
	bad := &Tensor{Name: "t", DataType: Float, Dims: []int64{3}, RawData: make([]byte, 8)}
	if _, err := bad.Floats(); !errors.Is(err, ErrInvalid) {
		t.Errorf("short raw data: %v", err)
	}
	neg := &Tensor{Name: "t", DataType: Float, Dims: []int64{-1}}
	if _, err := neg.Floats(); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative dim: %v", err)
	}
	over := &Tensor{Name: "t", DataType: Float, Dims: []int64{1 << 40, 1 << 40}}
	if _, err := over.NumElements(); !errors.Is(err, ErrInvalid) {
		t.Errorf("overflow: %v", err)
	}
	if _, err := (&Tensor{DataType: Int64}).Floats(); !errors.Is(err, ErrInvalid) {
		t.Errorf("wrong type: %v", err)
	}
	packed := &Tensor{DataType: Float, Dims: []int64{2}, FloatData: []float32{1, 2}}
	if f, err := packed.Floats(); err != nil || f[1] != 2 {
		t.Errorf("float_data: %v %v", f, err)
	}
	e := &Tensor{Name: "e", DataLocation: LocationExternal, ExternalData: []StringStringEntry{{"location", "d"}, {"offset", "-4"}}}
	if _, _, _, err := e.External(); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative offset: %v", err)
	}
}

func FuzzReadMetadata(f *testing.F) {
	seedFuzz(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadHeader(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		kept := len(h.ProducerName) + len(h.ProducerVersion) + len(h.Domain) + len(h.DocString)
		for _, e := range h.MetadataProps {
			kept += len(e.Key) + len(e.Value)
		}
		if kept > MaxHeaderBytes || kept > len(b) {
			t.Fatalf("kept %d bytes from %d input bytes", kept, len(b))
		}
		// What ReadHeader accepts, Unmarshal must agree on the metadata of
		// (when it parses the rest too).
		if m, err := Unmarshal(b); err == nil && !reflect.DeepEqual(m.MetadataProps, h.MetadataProps) {
			t.Fatalf("Unmarshal metadata %v, ReadHeader %v", m.MetadataProps, h.MetadataProps)
		}
	})
}

func FuzzUnmarshal(f *testing.F) {
	seedFuzz(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Unmarshal(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		// Whatever parses re-encodes and parses to the same model.
		out, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Unmarshal(out)
		if err != nil {
			t.Fatalf("re-encoded model does not parse: %v", err)
		}
		// Compared as encodings: reflect.DeepEqual calls a model holding a
		// NaN float (an attribute, a tensor value) different from itself.
		out2, err := m2.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatal("re-encoded model differs")
		}
		for _, tn := range allTensors(m) {
			tn.Floats()
			tn.Int64s()
			tn.External()
		}
	})
}

// normalize clears differences that re-encoding may legitimately introduce
// (empty vs nil slices, attribute values of fields not selected by Type).
func allTensors(m *Model) []*Tensor {
	if m.Graph == nil {
		return nil
	}
	ts := append([]*Tensor(nil), m.Graph.Initializers...)
	for _, n := range m.Graph.Nodes {
		for _, a := range n.Attributes {
			if a.T != nil {
				ts = append(ts, a.T)
			}
		}
	}
	return ts
}

// seedFuzz adds the sample model, its prefixes, and the files in testdata/.
func seedFuzz(f *testing.F) {
	b, _ := sample().Marshal()
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte{})
	entries, _ := os.ReadDir("testdata")
	for _, e := range entries {
		if data, err := os.ReadFile(filepath.Join("testdata", e.Name())); err == nil && !e.IsDir() {
			f.Add(data)
		}
	}
}

var update = flag.Bool("update", false, "rewrite testdata/sample.onnx (the fuzz seed)")

// TestSampleFile keeps testdata/sample.onnx, the fuzz seed, equal to
// sample(); run with -update to regenerate it.
func TestSampleFile(t *testing.T) {
	b, _ := sample().Marshal()
	path := filepath.Join("testdata", "sample.onnx")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestSampleFile -update)", err)
	}
	if !bytes.Equal(got, b) {
		t.Fatal("testdata/sample.onnx is stale: run go test -run TestSampleFile -update")
	}
}

// TestWriteTo: streaming gives the bytes Marshal gives, with large raw data
// bypassing the buffer and deferred tensors produced at write time.
func TestWriteTo(t *testing.T) {
	big := make([]float32, 50000)
	for i := range big {
		big[i] = float32(i) * 0.5
	}
	m := sample()
	m.Graph.Initializers = append(m.Graph.Initializers, FloatTensor("big", []int64{50000}, big))
	calls := 0
	deferred := &Tensor{Name: "lazy", DataType: Float, Dims: []int64{50000}, DeferredLen: 200000,
		Deferred: func() ([]byte, error) { calls++; return Float32Bytes(big), nil }}
	m.Graph.Initializers = append(m.Graph.Initializers, deferred)
	want, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := m.WriteTo(&buf)
	if err != nil || n != int64(len(want)) || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("WriteTo: %d bytes, %v; differs from Marshal (%d bytes)", n, err, len(want))
	}
	if calls != 2 {
		t.Errorf("deferred producer called %d times, want once per write", calls)
	}
	got, err := Unmarshal(want)
	if err != nil {
		t.Fatal(err)
	}
	lazy, err := got.Graph.Initializers[len(got.Graph.Initializers)-1].Floats()
	if err != nil || !reflect.DeepEqual(lazy, big) {
		t.Fatalf("deferred tensor read back wrong: %v", err)
	}

	// A producer error aborts the write; a wrong length is caught.
	boom := errors.New("boom")
	deferred.Deferred = func() ([]byte, error) { return nil, boom }
	if _, err := m.WriteTo(io.Discard); !errors.Is(err, boom) {
		t.Errorf("producer error: %v", err)
	}
	deferred.Deferred = func() ([]byte, error) { return make([]byte, 3), nil }
	if _, err := m.Marshal(); err == nil {
		t.Error("short deferred data accepted")
	}
	// A failing writer is reported.
	deferred.Deferred = func() ([]byte, error) { return Float32Bytes(big), nil }
	if _, err := m.WriteTo(failWriter{}); err == nil {
		t.Error("writer error lost")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
