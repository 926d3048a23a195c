// Command soak is the attacker of scripts/serve-soak.sh: for -duration it
// sends, from -workers goroutines per kind of attack, hostile requests to a bitrun
// server on a loopback address (decode bombs refused from their markers and
// costly progressive JPEGs under the bounds, KServe requests listing an
// output 100,000 times, slow bodies, connections aborted mid-body) and
// prints one line counting the answers per kind and status.
//
// It uses only the standard library and refuses non-loopback targets.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bitrun/bitrun/internal/progjpeg"
)

func main() {
	base := flag.String("url", "http://127.0.0.1:18090", "server base URL (loopback only)")
	model := flag.String("model", "m", "model name")
	duration := flag.Duration("duration", 20*time.Second, "how long to attack")
	workers := flag.Int("workers", 2, "concurrent attackers per kind of attack")
	res := flag.Int("resolution", 64, "the model's input side (for KServe bodies)")
	flag.Parse()
	u, err := url.Parse(*base)
	if err != nil {
		fatal(err)
	}
	if ip := net.ParseIP(u.Hostname()); ip == nil || !ip.IsLoopback() {
		fatal(fmt.Errorf("soak: %s is not a loopback address", u.Hostname()))
	}
	predict := *base + "/v1/models/" + *model + "/predict"
	infer := *base + "/v2/models/" + *model + "/infer"
	hc := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	attacks := []struct {
		name string
		run  func(ctx context.Context) string
	}{
		// 199 bytes claiming a 6300x6300 colour progressive frame, no DC scan.
		{"bomb-tiny", post(hc, predict, "image/jpeg", progjpeg.Stream{W: 6300, H: 6300, Comps: 3, ACScans: 1}.Encode())},
		// 520 scans over the frame (libjpeg-turbo's limit is 500).
		{"bomb-scans", post(hc, predict, "image/jpeg", progjpeg.Stream{W: 1024, H: 1024, Comps: 1, DC: true, ACScans: 520}.Encode())},
		// Within every bound: the most a progressive upload may cost here.
		{"bomb-allowed", post(hc, predict, "image/jpeg", progjpeg.Stream{W: 1600, H: 1600, Comps: 1, DC: true, ACScans: 15}.Encode())},
		{"infer-dup-outputs", post(hc, infer, "application/json", dupOutputs(*res, 100_000))},
		{"slow-body", func(ctx context.Context) string { return slowBody(ctx, u.Host, "/v1/models/"+*model+"/predict") }},
		{"aborted", func(ctx context.Context) string { return aborted(u.Host, "/v1/models/"+*model+"/predict") }},
	}
	ctx, cancel := context.WithTimeout(context.Background(), *duration)
	defer cancel()
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	// Each kind of attack has its own workers, so slow ones (slow bodies
	// wait for the server's body timeout) do not thin out the others.
	for _, a := range attacks {
		for range *workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					got := a.run(ctx)
					mu.Lock()
					counts[a.name+":"+got]++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
	}
	fmt.Println("attacks: " + strings.Join(parts, " "))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

// post returns an attack that POSTs body and reports the status code.
func post(hc *http.Client, u, contentType string, body []byte) func(context.Context) string {
	return func(ctx context.Context) string {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return "error"
		}
		req.Header.Set("Content-Type", contentType)
		resp, err := hc.Do(req)
		if err != nil {
			return "error"
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		return fmt.Sprint(resp.StatusCode)
	}
}

// slowBody announces a 64 KiB body and trickles a byte every 200 ms until
// the server answers (its body timeout) or the attack ends.
func slowBody(ctx context.Context, host, path string) string {
	c, err := net.Dial("tcp", host)
	if err != nil {
		return "error"
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 65536\r\n\r\n", path)
	buf := make([]byte, 1)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for ctx.Err() == nil {
		if _, err := c.Write([]byte{0xFF}); err != nil {
			return "closed"
		}
		if n, _ := c.Read(buf); n > 0 {
			line := make([]byte, 11)
			io.ReadFull(c, line)
			return strings.Fields(string(append(buf, line...)) + " ? ?")[1]
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	}
	return "unanswered"
}

// aborted sends half of an announced 1 MiB body and hangs up.
func aborted(host, path string) string {
	c, err := net.Dial("tcp", host)
	if err != nil {
		return "error"
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n", path, 1<<20)
	c.Write(bytes.Repeat([]byte{0x89}, 1<<19))
	c.Close()
	return "sent"
}

// dupOutputs is a KServe body of one zero image listing "logits" n times.
func dupOutputs(res, n int) []byte {
	outs := make([]map[string]string, n)
	for i := range outs {
		outs[i] = map[string]string{"name": "logits"}
	}
	b, _ := json.Marshal(map[string]any{
		"inputs":  []map[string]any{{"name": "image", "shape": []int{1, 3, res, res}, "datatype": "FP32", "data": make([]float32, 3*res*res)}},
		"outputs": outs,
	})
	return b
}
