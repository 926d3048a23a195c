package serve_test

// The try-it page in a real browser: headless Chromium driven over the
// DevTools protocol (a minimal WebSocket client below, standard library
// only). It fails instead of skipping when BITRUN_REQUIRE_CHROMIUM=1 (make
// test; make setup installs Debian's chromium) and Chromium is missing.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bitrun/bitrun/runtime"
	"github.com/bitrun/bitrun/serve"

	"github.com/bitrun/bitrun/internal/testenv"
	"github.com/bitrun/bitrun/internal/testwait"
)

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Require(t, "BITRUN_REQUIRE_CHROMIUM", "Chromium",
		errors.New("not installed (apt-get install chromium, or make setup)"))
	return ""
}

// TestPageInChromium loads GET / in headless Chromium with a bearer token
// set on the server, types the token into the page, chooses a real JPEG in
// the file input and reads the rendered top-1 label, which must be the
// label `bitrun predict` gives (the reference classification without the
// server).
func TestPageInChromium(t *testing.T) {
	bin := chromiumPath(t)
	path := exportTiny(t)
	srv, _, base := startORT(t, path, serve.Config{AuthToken: "tok3n"}, serve.Options{})
	_ = srv
	img := testImages(t, 3)[2]
	imgPath := filepath.Join(t.TempDir(), "photo.jpg")
	if err := os.WriteFile(imgPath, img, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := runtime.Open(path, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	want := reference(t, p, img, 1)[0].Label

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := startBrowser(ctx, t, bin)
	b.call(t, "Page.enable", nil)
	b.call(t, "Page.navigate", map[string]any{"url": base + "/"})
	// Without the token the page shows the server's 401.
	b.waitFor(t, `document.body.dataset.state`, "error")
	if msg := b.eval(t, `document.getElementById("error").textContent`); !strings.Contains(msg, "401") {
		t.Fatalf("page error without a token: %q", msg)
	}
	b.eval(t, `(() => { const f = document.getElementById("token"); f.value = "tok3n"; f.dispatchEvent(new Event("change")); return ""; })()`)
	b.waitFor(t, `document.body.dataset.state`, "ready")
	if m := b.eval(t, `document.getElementById("meta").textContent`); !strings.Contains(m, "64x64") || !strings.Contains(m, "tiny") {
		t.Fatalf("metadata shown: %q", m)
	}
	doc := b.call(t, "DOM.getDocument", nil)
	var root struct {
		Root struct {
			NodeID int `json:"nodeId"`
		} `json:"root"`
	}
	json.Unmarshal(doc, &root)
	q := b.call(t, "DOM.querySelector", map[string]any{"nodeId": root.Root.NodeID, "selector": "#file"})
	var node struct {
		NodeID int `json:"nodeId"`
	}
	json.Unmarshal(q, &node)
	b.call(t, "DOM.setFileInputFiles", map[string]any{"nodeId": node.NodeID, "files": []string{imgPath}})
	b.waitFor(t, `document.body.dataset.state`, "done")
	got := b.eval(t, `document.getElementById("top1").textContent`)
	bars := b.eval(t, `String(document.querySelectorAll("#bars .bar").length)`)
	latency := b.eval(t, `document.getElementById("latency").textContent`)
	if got != want || bars != "5" || !regexp.MustCompile(`\d+\.\d ms`).MatchString(latency) {
		t.Fatalf("page shows top-1 %q (%s bars, latency %q); bitrun predict gives %q", got, bars, latency, want)
	}
	t.Logf("Chromium top-1 %q = predict's, latency %s", got, latency)
}

// browser is one headless Chromium page driven over the DevTools protocol.
type browser struct {
	conn net.Conn
	rd   *bufio.Reader
	id   int
}

func startBrowser(ctx context.Context, t *testing.T, bin string) *browser {
	t.Helper()
	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile after the browser is killed; its removal is best effort.
	profile, err := os.MkdirTemp("", "bitrun-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 10 {
			if os.RemoveAll(profile) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	cmd := exec.CommandContext(ctx, bin, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--remote-debugging-port=0", "--user-data-dir="+profile, "about:blank")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var wsURL string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if _, after, ok := strings.Cut(sc.Text(), "DevTools listening on "); ok {
			wsURL = strings.TrimSpace(after)
			break
		}
	}
	if wsURL == "" {
		t.Fatalf("%s did not start its DevTools endpoint", bin)
	}
	go io.Copy(io.Discard, stderr)
	u, _ := url.Parse(wsURL)
	// The page target (about:blank) from /json/list.
	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	resp, err := http.Get("http://" + u.Host + "/json/list")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&targets)
	resp.Body.Close()
	for _, tg := range targets {
		if tg.Type == "page" {
			wsURL = tg.WS
			break
		}
	}
	u, _ = url.Parse(wsURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	key := make([]byte, 16)
	rand.Read(key)
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
		u.RequestURI(), u.Host, base64.StdEncoding.EncodeToString(key))
	rd := bufio.NewReader(conn)
	hs, err := http.ReadResponse(rd, nil)
	if err != nil || hs.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("DevTools WebSocket handshake: %v %v", hs, err)
	}
	return &browser{conn: conn, rd: rd}
}

// call sends one DevTools command and returns its result, skipping events.
func (b *browser) call(t *testing.T, method string, params any) json.RawMessage {
	t.Helper()
	b.id++
	msg, _ := json.Marshal(map[string]any{"id": b.id, "method": method, "params": params})
	if err := b.write(msg); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	for {
		m, err := b.read()
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		var r struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(m, &r) != nil || r.ID != b.id {
			continue // an event
		}
		if r.Error != nil {
			t.Fatalf("%s: %s", method, r.Error.Message)
		}
		return r.Result
	}
}

// eval evaluates a JavaScript expression and returns its string value.
func (b *browser) eval(t *testing.T, expr string) string {
	t.Helper()
	res := b.call(t, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	json.Unmarshal(res, &r)
	if r.Result.Value == nil {
		return ""
	}
	return fmt.Sprint(r.Result.Value)
}

// waitFor polls expr until it equals want (or the test times out).
func (b *browser) waitFor(t *testing.T, expr, want string) {
	t.Helper()
	testwait.Until(t, 30*time.Second, 50*time.Millisecond, func() error {
		if got := b.eval(t, expr); got != want {
			return fmt.Errorf("%s = %q, want %q (page error: %q)", expr, got, want, b.eval(t, `document.getElementById("error").textContent`))
		}
		return nil
	})
}

// write sends one masked text frame.
func (b *browser) write(p []byte) error {
	hdr := []byte{0x81}
	switch n := len(p); {
	case n < 126:
		hdr = append(hdr, 0x80|byte(n))
	case n < 1<<16:
		hdr = append(hdr, 0x80|126, byte(n>>8), byte(n))
	default:
		hdr = append(hdr, 0x80|127)
		hdr = binary.BigEndian.AppendUint64(hdr, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	hdr = append(hdr, mask[:]...)
	out := make([]byte, len(p))
	for i := range p {
		out[i] = p[i] ^ mask[i%4]
	}
	_, err := b.conn.Write(append(hdr, out...))
	return err
}

// read returns the next complete text message (control frames skipped).
func (b *browser) read() ([]byte, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(b.rd, h[:]); err != nil {
			return nil, err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var x [2]byte
			if _, err := io.ReadFull(b.rd, x[:]); err != nil {
				return nil, err
			}
			n = uint64(binary.BigEndian.Uint16(x[:]))
		case 127:
			var x [8]byte
			if _, err := io.ReadFull(b.rd, x[:]); err != nil {
				return nil, err
			}
			n = binary.BigEndian.Uint64(x[:])
		}
		if n > 64<<20 {
			return nil, fmt.Errorf("DevTools frame of %d bytes", n)
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(b.rd, p); err != nil {
			return nil, err
		}
		op := h[0] & 0x0f
		if op >= 8 { // close, ping, pong
			if op == 8 {
				return nil, io.EOF
			}
			continue
		}
		msg = append(msg, p...)
		if h[0]&0x80 != 0 {
			return msg, nil
		}
	}
}
