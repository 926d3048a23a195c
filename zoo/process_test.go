package zoo

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestHelperProcessPull is the body of the child processes started by
// TestConcurrentPullsAcrossProcesses; it does nothing in a normal run.
func TestHelperProcessPull(t *testing.T) {
	base, dir := os.Getenv("ZOO_HELPER_BASE"), os.Getenv("ZOO_HELPER_DIR")
	if base == "" {
		return
	}
	o := Options{Catalog: mustCatalog(t, testEntry()), CacheDir: dir, BaseURL: base, Backoff: time.Millisecond}
	res, err := Pull(context.Background(), "test-tiny", o)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	fmt.Printf("RESULT %s %d\n", res.SHA256, res.Downloaded)
}

func TestConcurrentPullsAcrossProcesses(t *testing.T) {
	data := tinyBytes(t)
	s := newServer(t, map[string][]byte{testFile: data})
	s.set(func(s *server) { s.delay = 300 * time.Millisecond })
	dir := t.TempDir()
	const n = 2
	cmds := make([]*exec.Cmd, n)
	outs := make([]*strings.Builder, n)
	for i := range cmds {
		cmds[i] = exec.Command(os.Args[0], "-test.run=^TestHelperProcessPull$", "-test.count=1")
		cmds[i].Env = append(os.Environ(), "ZOO_HELPER_BASE="+s.base(), "ZOO_HELPER_DIR="+dir)
		outs[i] = &strings.Builder{}
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	downloads := 0
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("child %d: %v\n%s", i, err, outs[i])
		}
		var digest string
		var got int64
		line := outs[i].String()
		idx := strings.Index(line, "RESULT ")
		if idx < 0 {
			t.Fatalf("child %d printed no result:\n%s", i, line)
		}
		if _, err := fmt.Sscanf(line[idx:], "RESULT %s %d", &digest, &got); err != nil || digest != sha(data) {
			t.Fatalf("child %d: %q %v", i, line, err)
		}
		if got > 0 {
			downloads++
		}
	}
	if downloads != 1 || s.requests.Load() != 1 {
		t.Fatalf("%d downloads, %d requests across processes; want 1", downloads, s.requests.Load())
	}
}

// TestPullHonoursProxyFromEnvironment pulls from an unresolvable host through
// HTTP_PROXY in a child process (the standard library reads the proxy
// variables once per process).
func TestPullHonoursProxyFromEnvironment(t *testing.T) {
	data := tinyBytes(t)
	proxy := newServer(t, map[string][]byte{testFile: data})
	var host string
	proxy.setHook(func(w http.ResponseWriter, r *http.Request, n int64) bool {
		proxy.set(func(s *server) { host = r.Host })
		return false // serve the file: this test server plays the proxy
	})
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcessPull$", "-test.count=1")
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "REQUEST_METHOD":
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "ZOO_HELPER_BASE=http://bit-mirror.invalid/", "ZOO_HELPER_DIR="+t.TempDir(),
		"HTTP_PROXY="+proxy.srv.URL)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "RESULT "+sha(data)) {
		t.Fatalf("pull through the proxy: %v\n%s", err, out)
	}
	proxy.set(func(s *server) {
		if host != "bit-mirror.invalid" {
			t.Fatalf("proxy saw host %q", host)
		}
	})
}
