package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"image"
	"image/color"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const fashionDir = "/usr/share/datasets/fashion-mnist"

// rawIDX reads the first limit bytes of a (possibly gzipped) file,
// independently of readIDX.
func rawIDX(t *testing.T, path string, limit int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	b, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkMNISTLike checks the real (Fashion-)MNIST files in dir: counts,
// shapes, label range, class balance and agreement with the raw bytes.
func checkMNISTLike(t *testing.T, dir string, classes []string, balanced bool) {
	for _, sp := range []struct {
		split, prefix string
		n             int
	}{{"train", "train", 60000}, {"test", "t10k", 10000}} {
		ds, err := Open(dir, sp.split)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != sp.n {
			t.Fatalf("%s: %d examples, want %d", sp.split, ds.Len(), sp.n)
		}
		if !slices.Equal(ds.Classes(), classes) {
			t.Errorf("classes %q, want %q", ds.Classes(), classes)
		}
		rawLabels := rawIDX(t, filepath.Join(dir, sp.prefix+"-labels-idx1-ubyte.gz"), 1<<20)[8:]
		counts := make([]int, 10)
		for i := 0; i < ds.Len(); i++ {
			l := ds.Label(i)
			if l < 0 || l > 9 {
				t.Fatalf("label %d out of range", l)
			}
			if l != int(rawLabels[i]) {
				t.Fatalf("label %d = %d, raw file says %d", i, l, rawLabels[i])
			}
			counts[l]++
		}
		per := sp.n / 10
		for c, n := range counts {
			if balanced && n != per {
				t.Errorf("%s: class %d has %d examples, want %d", sp.split, c, n, per)
			}
			if n < per/2 {
				t.Errorf("%s: class %d has only %d examples", sp.split, c, n)
			}
		}
		rawPix := rawIDX(t, filepath.Join(dir, sp.prefix+"-images-idx3-ubyte.gz"), 16+3*784)
		for _, i := range []int{0, 1, 2, sp.n - 1} {
			m, err := ds.Image(i)
			if err != nil {
				t.Fatal(err)
			}
			g, ok := m.(*image.Gray)
			if !ok || g.Rect != image.Rect(0, 0, 28, 28) {
				t.Fatalf("image %d: %T %v, want 28x28 *image.Gray", i, m, m.Bounds())
			}
			if i < 3 && !bytes.Equal(g.Pix, rawPix[16+i*784:16+(i+1)*784]) {
				t.Errorf("image %d pixels differ from the raw file", i)
			}
		}
		if _, err := ds.Image(sp.n); err == nil {
			t.Error("Image(Len()) did not fail")
		}
	}
}

func TestFashionMNIST(t *testing.T) {
	if _, err := os.Stat(filepath.Join(fashionDir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST not installed at %s: %v", fashionDir, err)
	}
	checkMNISTLike(t, fashionDir, FashionMNISTClasses, true)
}

func TestMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: Fashion-MNIST already covers the IDX reader; this reads another 11 MB of gzip")
	}
	dir, err := MNISTDir()
	if err != nil {
		t.Skipf("GoMNIST module not downloaded (make setup runs go mod download): %v", err)
	}
	checkMNISTLike(t, dir, strings.Split("0 1 2 3 4 5 6 7 8 9", " "), false)
}

func TestMNISTDirMatchesGoModDownload(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	out, err := exec.Command(goBin, "env", "GOMODCACHE").Output()
	if err != nil {
		t.Skipf("go env: %v", err)
	}
	want := filepath.Join(strings.TrimSpace(string(out)), gomnistModule+"@v0.0.0-20150320212226-2fbe10d0fa63", "data")
	if _, err := os.Stat(want); err != nil {
		t.Skipf("GoMNIST not downloaded: %v", err)
	}
	got, err := MNISTDir()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("MNISTDir() = %s, want %s", got, want)
	}
	t.Setenv("GOMODCACHE", t.TempDir())
	t.Setenv("GOPATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	t.Setenv("PATH", "")
	if _, err := MNISTDir(); err == nil || !strings.Contains(err.Error(), "go mod download") {
		t.Errorf("empty caches: err = %v", err)
	}
}

// idxBytes builds an IDX file: magic 0x0000080N, dims, payload.
func idxBytes(dims []uint32, payload []byte) []byte {
	b := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, d)
	}
	return append(b, payload...)
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestIDXSynthetic(t *testing.T) {
	const n, rows, cols = 5, 3, 2
	pix := make([]byte, n*rows*cols)
	for i := range pix {
		pix[i] = uint8(i * 3)
	}
	labels := []byte{0, 2, 1, 2, 0}
	good := func() ([]byte, []byte) {
		return idxBytes([]uint32{n, rows, cols}, pix), idxBytes([]uint32{n}, labels)
	}
	for _, zip := range []bool{false, true} {
		dir := t.TempDir()
		im, lb := good()
		suffix := ""
		if zip {
			im, lb, suffix = gz(im), gz(lb), ".gz"
		}
		writeFile(t, filepath.Join(dir, "t10k-images-idx3-ubyte"+suffix), im)
		writeFile(t, filepath.Join(dir, "t10k-labels-idx1-ubyte"+suffix), lb)
		writeFile(t, filepath.Join(dir, "classes.txt"), []byte("cat\ndog\nbird\n"))
		ds, err := Open(dir, "test")
		if err != nil {
			t.Fatalf("gzip=%v: %v", zip, err)
		}
		if ds.Len() != n || !slices.Equal(ds.Classes(), []string{"cat", "dog", "bird"}) || ds.Label(3) != 2 {
			t.Fatalf("gzip=%v: len %d classes %q label3 %d", zip, ds.Len(), ds.Classes(), ds.Label(3))
		}
		m, _ := ds.Image(2)
		if g := m.(*image.Gray); g.Rect.Dx() != cols || g.Rect.Dy() != rows || g.GrayAt(1, 2).Y != pix[2*6+2*2+1] {
			t.Fatalf("gzip=%v: image 2 wrong: %v", zip, g)
		}
		if _, err := Open(dir, "train"); !errors.Is(err, ErrSplit) {
			t.Errorf("missing train split: err = %v, want ErrSplit", err)
		}
		if _, err := Open(dir, "val"); !errors.Is(err, ErrSplit) {
			t.Errorf("val split on IDX: err = %v, want ErrSplit", err)
		}
		if ds, err := Open(dir, "t10k"); err != nil || ds.Len() != n {
			t.Errorf("t10k alias: %v", err)
		}
	}

	im, lb := good()
	bad := []struct {
		name     string
		im, lb   []byte
		classes  string
		contains string
	}{
		{"truncated pixels", im[:len(im)-1], lb, "", "truncated"},
		{"truncated gz pixels", gz(im)[:40], lb, "", ""},
		{"truncated labels", im, lb[:len(lb)-2], "", "truncated"},
		{"truncated header", im[:9], lb, "", "truncated header"},
		{"bad magic", append([]byte{0, 0, 9, 3}, im[4:]...), lb, "", "bad magic"},
		{"labels as images", lb, lb, "", "bad magic"},
		{"count mismatch", im, idxBytes([]uint32{n - 1}, labels[:n-1]), "", "labels"},
		{"trailing data", append(slices.Clone(im), 7), lb, "", "trailing"},
		{"huge dims", idxBytes([]uint32{1 << 30, 1 << 10, 1 << 10}, nil), lb, "", "exceed"},
		{"label beyond classes", im, lb, "a\nb\n", "label 2"},
		{"blank class line", im, lb, "a\n\nb\nc\n", "empty"},
	}
	for _, tc := range bad {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte"), tc.im)
		writeFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"), tc.lb)
		if tc.classes != "" {
			writeFile(t, filepath.Join(dir, "labels.txt"), []byte(tc.classes))
		}
		_, err := Open(dir, "train")
		if !errors.Is(err, ErrBadDataset) {
			t.Errorf("%s: err = %v, want ErrBadDataset", tc.name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.contains)
		}
	}
	// Only one of the two files.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "train-images-idx3-ubyte.gz"), gz(im))
	if _, err := Open(dir, "train"); !errors.Is(err, ErrBadDataset) {
		t.Errorf("images without labels: %v", err)
	}
	// Fashion detection by path, digits otherwise.
	for sub, want := range map[string]string{"my-Fashion-set": "T-shirt/top", "digits": "0"} {
		d := filepath.Join(t.TempDir(), sub)
		writeFile(t, filepath.Join(d, "train-images-idx3-ubyte"), im)
		writeFile(t, filepath.Join(d, "train-labels-idx1-ubyte"), lb)
		ds, err := Open(d, "train")
		if err != nil {
			t.Fatal(err)
		}
		if len(ds.Classes()) != 10 || ds.Classes()[0] != want {
			t.Errorf("%s: classes %q", sub, ds.Classes())
		}
	}
}

// makeFolder writes tiny PNGs: files[class] images per class under root.
func makeFolder(t *testing.T, root string, files map[string]int) {
	for class, n := range files {
		for i := 0; i < n; i++ {
			m := image.NewGray(image.Rect(0, 0, 4, 4))
			m.Pix[0] = uint8(i)
			writeFile(t, filepath.Join(root, class, "img"+strconv.Itoa(i)+".png"), encPNG(t, m))
		}
	}
}

func TestImageFolderSplitLayout(t *testing.T) {
	root := t.TempDir()
	makeFolder(t, filepath.Join(root, "train"), map[string]int{"zebra": 3, "ant": 2})
	makeFolder(t, filepath.Join(root, "test"), map[string]int{"zebra": 1, "mole": 1})
	writeFile(t, filepath.Join(root, "train", "ant", "notes.txt"), []byte("not an image"))
	writeFile(t, filepath.Join(root, "train", "ant", ".hidden.png"), []byte("x"))
	writeFile(t, filepath.Join(root, "train", "ant", "broken.JPG"), []byte("not a jpeg"))
	tr, err := Open(root, "train")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"ant", "mole", "zebra"} // union over splits, sorted
	if !slices.Equal(tr.Classes(), want) {
		t.Fatalf("classes %q, want %q", tr.Classes(), want)
	}
	if tr.Len() != 6 {
		t.Fatalf("train has %d files, want 6 (2 ant + broken.JPG + 3 zebra)", tr.Len())
	}
	var got []int
	for i := 0; i < tr.Len(); i++ {
		got = append(got, tr.Label(i))
	}
	if !slices.Equal(got, []int{0, 0, 0, 2, 2, 2}) {
		t.Errorf("labels %v", got)
	}
	// Sorted by name: broken.JPG, img0.png, img1.png.
	if _, err := tr.Image(0); !errors.Is(err, ErrBadImage) || !strings.Contains(err.Error(), "broken.JPG") {
		t.Errorf("broken file: err = %v", err)
	}
	m, err := tr.Image(2)
	if err != nil {
		t.Fatal(err)
	}
	if m.(*image.Gray).Pix[0] != 1 {
		t.Errorf("image 2 is not ant/img1.png")
	}
	te, err := Open(root, "test")
	if err != nil {
		t.Fatal(err)
	}
	if te.Len() != 2 || te.Label(0) != 1 || te.Label(1) != 2 {
		t.Errorf("test: len %d labels %d %d", te.Len(), te.Label(0), te.Label(1))
	}
	if _, err := Open(root, "val"); !errors.Is(err, ErrSplit) {
		t.Errorf("missing val: err = %v", err)
	}
}

func TestImageFolderFlatSplit(t *testing.T) {
	root := t.TempDir()
	// Empty image files are fine: listing never decodes.
	for _, c := range []string{"b", "a"} {
		for i := 0; i < 200; i++ {
			writeFile(t, filepath.Join(root, c, "f"+strconv.Itoa(i)+".jpg"), nil)
		}
	}
	tr, err := Open(root, "train")
	if err != nil {
		t.Fatal(err)
	}
	te, err := Open(root, "test")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Len()+te.Len() != 400 {
		t.Fatalf("train %d + test %d != 400", tr.Len(), te.Len())
	}
	if tr.Len() < 280 || tr.Len() > 360 {
		t.Errorf("train has %d of 400, want about 80%%", tr.Len())
	}
	seen := map[string]bool{}
	for _, ds := range []Dataset{tr, te} {
		for i := 0; i < ds.Len(); i++ {
			p := ds.(*folderSet).Path(i)
			if seen[p] {
				t.Fatalf("%s in both splits", p)
			}
			seen[p] = true
			if want := filepath.Base(filepath.Dir(p)); ds.Classes()[ds.Label(i)] != want {
				t.Fatalf("%s labelled %s", p, ds.Classes()[ds.Label(i)])
			}
		}
	}
	again, _ := Open(root, "train")
	if again.Len() != tr.Len() || again.(*folderSet).Path(7) != tr.(*folderSet).Path(7) {
		t.Error("split not deterministic")
	}
	if _, err := Open(root, "val"); !errors.Is(err, ErrSplit) {
		t.Errorf("val on flat folder: %v", err)
	}
	if _, err := Open(t.TempDir(), "train"); !errors.Is(err, ErrBadDataset) {
		t.Errorf("empty folder: %v", err)
	}
	if _, err := Open(filepath.Join(root, "missing"), "train"); err == nil || !strings.HasPrefix(err.Error(), "data: ") {
		t.Errorf("missing folder: %v", err)
	}
}

// memSet is an in-memory Dataset for selection tests.
type memSet struct {
	labels []int
	nc     int
}

func (m memSet) Len() int { return len(m.labels) }
func (m memSet) Classes() []string {
	var c []string
	for i := 0; i < m.nc; i++ {
		c = append(c, strconv.Itoa(i))
	}
	return c
}
func (m memSet) Label(i int) int { return m.labels[i] }
func (m memSet) Image(i int) (image.Image, error) {
	g := image.NewGray(image.Rect(0, 0, 3, 3))
	for k := range g.Pix {
		g.Pix[k] = uint8(i)
	}
	return g, nil
}

func TestShuffled(t *testing.T) {
	for _, n := range []int{0, 1, 10, 1000} {
		p := Shuffled(n, 42)
		if len(p) != n {
			t.Fatalf("len %d", len(p))
		}
		s := slices.Sorted(slices.Values(p))
		for i, v := range s {
			if v != i {
				t.Fatalf("not a permutation of [0,%d)", n)
			}
		}
		if !slices.Equal(p, Shuffled(n, 42)) {
			t.Error("not deterministic")
		}
	}
	if slices.Equal(Shuffled(1000, 1), Shuffled(1000, 2)) {
		t.Error("seeds 1 and 2 give the same permutation")
	}
	if slices.IsSorted(Shuffled(1000, 3)) {
		t.Error("not shuffled")
	}
}

func TestSubsetAndPerClass(t *testing.T) {
	ds := memSet{nc: 3}
	for i := 0; i < 30; i++ {
		ds.labels = append(ds.labels, i%3)
	}
	ds.labels[29] = 0 // class 2 has 9 examples, class 0 has 11
	idx := []int{5, 1, 1, 29}
	s := Subset(ds, idx)
	idx[0] = 0 // Subset copied the indices
	if s.Len() != 4 || s.Label(0) != 2 || s.Label(3) != 0 {
		t.Fatalf("subset labels wrong")
	}
	m, _ := s.Image(0)
	if m.(*image.Gray).Pix[0] != 5 {
		t.Error("subset image 0 is not example 5")
	}
	ss := Subset(s, []int{3, 0})
	if ss.Label(0) != 0 || ss.Len() != 2 {
		t.Error("nested subset wrong")
	}
	if m, _ := ss.Image(1); m.(*image.Gray).Pix[0] != 5 {
		t.Error("nested subset image wrong")
	}
	if _, err := s.Image(4); err == nil {
		t.Error("out of range Image did not fail")
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Subset with index 30 did not panic")
			}
		}()
		Subset(ds, []int{30})
	}()

	for _, k := range []int{1, 5, 10} {
		p := PerClass(ds, k, 7)
		counts := map[int]int{}
		seen := map[int]bool{}
		for _, i := range p {
			if seen[i] {
				t.Fatalf("k=%d: index %d twice", k, i)
			}
			seen[i] = true
			counts[ds.Label(i)]++
		}
		for c, avail := range map[int]int{0: 11, 1: 10, 2: 9} {
			if counts[c] != min(k, avail) {
				t.Errorf("k=%d: class %d has %d, want %d", k, c, counts[c], min(k, avail))
			}
		}
		if !slices.Equal(p, PerClass(ds, k, 7)) {
			t.Errorf("k=%d: not deterministic", k)
		}
	}
	if slices.Equal(PerClass(ds, 3, 1), PerClass(ds, 3, 2)) && slices.Equal(PerClass(ds, 3, 3), PerClass(ds, 3, 4)) {
		t.Error("seed does not change the selection")
	}
}

func TestBatch(t *testing.T) {
	// Colour images of varied sizes so crops differ between examples.
	ds := folderOf(t, 9)
	idx := []int{3, 0, 8, 8, 5}
	const size = 12
	per := 3 * size * size
	for _, train := range []bool{false, true} {
		dst := make([]float32, len(idx)*per)
		if err := Batch(ds, idx, size, 3, BiTNorm, train, rand.New(rand.NewPCG(5, 5)), dst); err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(5, 5))
		for k, i := range idx {
			img, err := ds.Image(i)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, per)
			if train {
				TrainTensor(img, TrainPreSize(size), size, 3, BiTNorm, r, want)
			} else {
				EvalTensor(img, size, 3, BiTNorm, want)
			}
			if !slices.Equal(dst[k*per:(k+1)*per], want) {
				t.Fatalf("train=%v: example %d differs from the sequential result", train, k)
			}
		}
	}
	if err := Batch(ds, idx, size, 3, BiTNorm, false, nil, make([]float32, 5)); err == nil {
		t.Error("short dst accepted")
	}
	if err := Batch(ds, idx, size, 2, BiTNorm, false, nil, make([]float32, 2*len(idx)*size*size)); err == nil {
		t.Error("2 channels accepted")
	}
	if err := Batch(ds, idx, size, 3, BiTNorm, true, nil, make([]float32, len(idx)*per)); err == nil {
		t.Error("train without rng accepted")
	}
	// A broken file surfaces as an error naming the example.
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "train", "x", "bad.png"), []byte("garbage"))
	bad, err := Open(root, "train")
	if err != nil {
		t.Fatal(err)
	}
	if err := Batch(bad, []int{0}, 4, 3, BiTNorm, false, nil, make([]float32, 48)); !errors.Is(err, ErrBadImage) {
		t.Errorf("broken file in batch: %v", err)
	}
	if got := Labels(ds, idx); !slices.Equal(got, []int{ds.Label(3), ds.Label(0), ds.Label(8), ds.Label(8), ds.Label(5)}) {
		t.Errorf("Labels = %v", got)
	}
}

// folderOf writes n PNGs of different sizes and colours into a split-layout
// folder and opens its train split.
func folderOf(t *testing.T, n int) Dataset {
	root := t.TempDir()
	for i := 0; i < n; i++ {
		m := image.NewRGBA(image.Rect(0, 0, 10+3*i, 20-i))
		for p := 0; p < len(m.Pix); p += 4 {
			m.Pix[p], m.Pix[p+1], m.Pix[p+2], m.Pix[p+3] = uint8(p*7+i), uint8(p), uint8(i*20), 255
		}
		m.SetRGBA(0, 0, color.RGBA{255, 255, 255, 255})
		writeFile(t, filepath.Join(root, "train", "c"+strconv.Itoa(i%2), "i"+strconv.Itoa(i)+".png"), encPNG(t, m))
	}
	ds, err := Open(root, "train")
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

func benchmarkBatch(b *testing.B, batch, size int, train bool) {
	const n, side = 1024, 28
	r := rand.New(rand.NewPCG(1, 1))
	ds := &idxSet{pix: make([]byte, n*side*side), n: n, rows: side, cols: side, labels: make([]uint8, n), classes: FashionMNISTClasses}
	for i := range ds.pix {
		ds.pix[i] = uint8(r.IntN(256))
	}
	idx := Shuffled(n, 1)[:batch]
	dst := make([]float32, batch*3*size*size)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := Batch(ds, idx, size, 3, BiTNorm, train, r, dst); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

func BenchmarkBatch(b *testing.B) {
	for _, c := range []struct {
		batch, size int
		train       bool
	}{{64, 128, true}, {64, 128, false}, {256, 32, true}} {
		b.Run("b"+strconv.Itoa(c.batch)+"_s"+strconv.Itoa(c.size)+"_train"+strconv.FormatBool(c.train), func(b *testing.B) { benchmarkBatch(b, c.batch, c.size, c.train) })
	}
}
