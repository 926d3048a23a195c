package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Bounds of a load test: it is a local measuring tool, not a flood generator.
const (
	loadMaxConcurrency = 256
	loadMaxRequests    = 100_000
)

func newLoadtestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "loadtest --url URL --image FILE [flags]",
		Short: "Measure a local bitrun server: throughput, latency percentiles, status codes",
		Long: `Send --requests predict requests with --concurrency clients to a bitrun
server on this machine and print the throughput, latency percentiles
(p50/p90/p99) and the count of each status code; --json prints the same as
JSON. Only loopback addresses are accepted, and the load is bounded (at most
256 clients and 100000 requests).

--url is the server's base URL (the model comes from --model, or is the only
one served) or a full .../v1/models/NAME/predict URL. When /metrics is
reachable, the mean batch size the server formed during the test is shown.`,
		Example: `  bitrun loadtest --url http://127.0.0.1:8080 --image cat.jpg --concurrency 32 --requests 2000`,
		Args:    cobra.NoArgs,
		RunE:    runLoadtest,
	}
	f := cmd.Flags()
	f.String("url", "http://127.0.0.1:8080", "server base URL or predict URL (loopback only)")
	f.String("model", "", "model name (default: the only model served)")
	f.String("image", "", "image file sent with every request")
	f.Int("concurrency", 32, "concurrent clients (1-256)")
	f.Int("requests", 2000, "total requests (1-100000)")
	f.Int("top-k", 5, "top_k asked for")
	f.Duration("timeout", 60*time.Second, "per-request timeout")
	f.String("token-file", "", "file holding the server's bearer token")
	f.Bool("json", false, "print JSON")
	return cmd
}

// loadReport is what loadtest prints.
type loadReport struct {
	URL         string         `json:"url"`
	Requests    int            `json:"requests"`
	Concurrency int            `json:"concurrency"`
	Seconds     float64        `json:"seconds"`
	Throughput  float64        `json:"requests_per_sec"`
	LatencyMs   loadLatency    `json:"latency_ms"`
	Status      map[string]int `json:"status"` // "200", "503", ..., "error" (no response)
	OK          int            `json:"ok"`
	Lost        int            `json:"lost"` // requests without an HTTP response
	Invalid     int            `json:"invalid"`
	MeanBatch   float64        `json:"mean_batch,omitempty"` // from /metrics, 0 when unknown
	Batches     float64        `json:"batches,omitempty"`
}

type loadLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func runLoadtest(cmd *cobra.Command, _ []string) error {
	f := cmd.Flags()
	rawURL, _ := f.GetString("url")
	modelName, _ := f.GetString("model")
	imagePath, _ := f.GetString("image")
	conc, _ := f.GetInt("concurrency")
	total, _ := f.GetInt("requests")
	k, _ := f.GetInt("top-k")
	timeout, _ := f.GetDuration("timeout")
	tokenFile, _ := f.GetString("token-file")
	asJSON, _ := f.GetBool("json")
	switch {
	case imagePath == "":
		return usagef("--image is required")
	case conc < 1 || conc > loadMaxConcurrency:
		return usagef("--concurrency %d: want 1 to %d", conc, loadMaxConcurrency)
	case total < 1 || total > loadMaxRequests:
		return usagef("--requests %d: want 1 to %d", total, loadMaxRequests)
	case k < 1:
		return usagef("--top-k %d: must be positive", k)
	case timeout <= 0:
		return usagef("--timeout %v: must be positive", timeout)
	}
	ctx := cmd.Context()
	base, err := url.Parse(rawURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return usagef("--url %q: want http://HOST:PORT[/...]", rawURL)
	}
	if err := requireLoopback(ctx, base.Hostname()); err != nil {
		return err
	}
	img, err := os.ReadFile(imagePath)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	token := ""
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return fmt.Errorf("loadtest: token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	hc := loadtestClient(timeout, conc)
	defer hc.CloseIdleConnections()

	predictURL, root, err := loadTargets(ctx, hc, base, modelName, token)
	if err != nil {
		return err
	}
	q := url.Values{"top_k": {strconv.Itoa(k)}}
	predictURL += "?" + q.Encode()
	contentType := http.DetectContentType(img)
	if !strings.HasPrefix(contentType, "image/") {
		contentType = "application/octet-stream"
	}
	before, _ := scrapeBatches(ctx, hc, root, token)

	var next atomic.Int64
	lat := make([]time.Duration, total)
	status := make([]int, total) // 0: no response, -1: 200 with a bad body
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= total || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				status[i] = loadOne(ctx, hc, predictURL, contentType, token, img)
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	done := min(int(next.Load()), total)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("loadtest: interrupted after %d requests: %w", done, err)
	}
	rep := summarizeLoad(predictURL, conc, elapsed, lat, status)
	if after, ok := scrapeBatches(ctx, hc, root, token); ok {
		rep.Batches = after[1] - before[1]
		if rep.Batches > 0 {
			rep.MeanBatch = (after[0] - before[0]) / rep.Batches
		}
	}
	out := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return writeLoadReport(out, rep)
}

// loadtestClient is loadtest's HTTP client: it follows no redirects (a 3xx
// is counted as the answer, so a server cannot send the load elsewhere) and
// its dialer refuses every address that is not loopback, whatever a name
// resolves to when the connection is made.
func loadtestClient(timeout time.Duration, conc int) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("loadtest: refusing to connect to %s: not a loopback address", address)
		}
		return nil
	}}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy: nil, DialContext: d.DialContext,
			MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, IdleConnTimeout: 30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// requireLoopback refuses hosts that are not this machine.
func requireLoopback(ctx context.Context, host string) error {
	if host == "" {
		return usagef("--url has no host")
	}
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return usagef("--url %s: loadtest only targets loopback addresses (127.0.0.0/8, ::1, localhost)", host)
		}
		return nil
	}
	if host != "localhost" && !strings.HasSuffix(host, ".localhost") {
		return usagef("--url %s: loadtest only targets loopback addresses (127.0.0.0/8, ::1, localhost)", host)
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("loadtest: resolving %s: %w", host, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return usagef("--url %s resolves to %s, not a loopback address", host, a.IP)
		}
	}
	return nil
}

// loadTargets works out the predict URL and the server root from --url and
// --model (asking /v1/models when the model is not named).
func loadTargets(ctx context.Context, hc *http.Client, base *url.URL, model, token string) (predict, root string, err error) {
	u := *base
	u.RawQuery, u.Fragment = "", ""
	path := strings.TrimSuffix(u.Path, "/")
	if i := strings.Index(path, "/v1/models/"); i >= 0 && strings.HasSuffix(path, "/predict") {
		u.Path = path[:i]
		return base.Scheme + "://" + base.Host + path, u.String(), nil
	}
	u.Path = path
	root = u.String()
	if model == "" {
		var list struct {
			Models []struct {
				Name string `json:"name"`
			} `json:"models"`
		}
		if err := loadGetJSON(ctx, hc, root+"/v1/models", token, &list); err != nil {
			return "", "", fmt.Errorf("loadtest: listing models (or give --model): %w", err)
		}
		if len(list.Models) != 1 {
			names := make([]string, len(list.Models))
			for i, m := range list.Models {
				names[i] = m.Name
			}
			return "", "", usagef("the server has %d models (%s): name one with --model", len(names), strings.Join(names, ", "))
		}
		model = list.Models[0].Name
	}
	return root + "/v1/models/" + url.PathEscape(model) + "/predict", root, nil
}

func loadGetJSON(ctx context.Context, hc *http.Client, u, token string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, bytes.TrimSpace(b[:min(len(b), 200)]))
	}
	return json.Unmarshal(b, out)
}

// loadOne sends one predict request and returns its status (0: no
// response, -1: a 200 whose body is not a predict answer).
func loadOne(ctx context.Context, hc *http.Client, u, contentType, token string, img []byte) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(img))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0
	}
	if resp.StatusCode == http.StatusOK {
		var pr struct {
			Predictions []json.RawMessage `json:"predictions"`
		}
		if json.Unmarshal(b, &pr) != nil || len(pr.Predictions) == 0 {
			return -1
		}
	}
	return resp.StatusCode
}

var batchMetric = regexp.MustCompile(`(?m)^bitrun_batch_size_(sum|count)\{[^}]*\} (\S+)$`)

// scrapeBatches sums bitrun_batch_size_sum and _count over models from
// /metrics; ok is false when they cannot be read.
func scrapeBatches(ctx context.Context, hc *http.Client, root, token string) ([2]float64, bool) {
	var v [2]float64
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, root+"/metrics", nil)
	if err != nil {
		return v, false
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return v, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return v, false
	}
	found := false
	for _, m := range batchMetric.FindAllStringSubmatch(string(b), -1) {
		x, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		found = true
		if m[1] == "sum" {
			v[0] += x
		} else {
			v[1] += x
		}
	}
	return v, found
}

func summarizeLoad(u string, conc int, elapsed time.Duration, lat []time.Duration, status []int) loadReport {
	rep := loadReport{URL: u, Requests: len(lat), Concurrency: conc, Seconds: elapsed.Seconds(), Status: map[string]int{}}
	if s := elapsed.Seconds(); s > 0 {
		rep.Throughput = float64(len(lat)) / s
	}
	ms := make([]float64, len(lat))
	var sum float64
	for i, d := range lat {
		ms[i] = float64(d.Microseconds()) / 1000
		sum += ms[i]
		switch code := status[i]; code {
		case 0:
			rep.Status["error"]++
			rep.Lost++
		case -1:
			rep.Status["200"]++
			rep.Invalid++
		default:
			rep.Status[strconv.Itoa(code)]++
			if code == http.StatusOK {
				rep.OK++
			}
		}
	}
	sort.Float64s(ms)
	if len(ms) > 0 {
		rep.LatencyMs = loadLatency{P50: percentile(ms, 0.50), P90: percentile(ms, 0.90), P99: percentile(ms, 0.99),
			Max: ms[len(ms)-1], Mean: sum / float64(len(ms))}
	}
	return rep
}

func writeLoadReport(w io.Writer, r loadReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "url          %s\n", r.URL)
	fmt.Fprintf(&b, "requests     %d (concurrency %d) in %.2fs\n", r.Requests, r.Concurrency, r.Seconds)
	fmt.Fprintf(&b, "throughput   %.1f requests/s\n", r.Throughput)
	l := r.LatencyMs
	fmt.Fprintf(&b, "latency ms   p50 %.2f  p90 %.2f  p99 %.2f  max %.2f  mean %.2f\n", l.P50, l.P90, l.P99, l.Max, l.Mean)
	codes := make([]string, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s: %d", c, r.Status[c])
	}
	fmt.Fprintf(&b, "status       %s\n", strings.Join(parts, "  "))
	fmt.Fprintf(&b, "lost         %d   invalid answers %d\n", r.Lost, r.Invalid)
	if r.Batches > 0 {
		fmt.Fprintf(&b, "batches      %.0f (mean size %.2f, from /metrics)\n", r.Batches, r.MeanBatch)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
