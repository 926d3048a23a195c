package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/spf13/cobra"
)

// healthOptions is what `bitrun health` probes: bound to its flags,
// completed by healthFlags and checked by validate.
type healthOptions struct {
	url     string        // the server's base URL
	path    string        // the probed route
	live    bool          // --live: path is the liveness route
	timeout time.Duration // whole request
}

func newHealthCmd() *cobra.Command {
	var o healthOptions
	cmd := &cobra.Command{
		Use:   "health [--url URL | --addr HOST:PORT] [--live]",
		Short: "Probe a running bitrun serve: exit 0 when it is ready (the container image's health check)",
		Long: `Probe a running bitrun serve: GET /v2/health/ready (or /v2/health/live
with --live) and exit 0 on 200, 1 otherwise. It has no shell or curl to
depend on, so the container image uses it as its HEALTHCHECK.

Without --url the server is the one serve would start with the same
configuration: serve.addr (--addr, BITRUN_SERVE_ADDR or the config file), an
unspecified host (0.0.0.0, ::) probed on loopback.`,
		Example: `  bitrun health
  bitrun health --url http://10.0.0.7:8080 --live`,
		Args: cobra.NoArgs,
		RunE: runE(bound(&o, healthFlags), runHealth),
	}
	f := cmd.Flags()
	f.StringVar(&o.url, "url", "", "server base URL (default: http:// and serve.addr)")
	f.String("addr", "127.0.0.1:8080", "server address host:port, as given to serve --addr") // serve.addr, read by healthFlags
	f.BoolVar(&o.live, "live", false, "probe liveness (/v2/health/live) instead of readiness")
	f.DurationVar(&o.timeout, "timeout", 3*time.Second, "request timeout")
	bindKey(cmd, "serve.addr", "addr")
	return cmd
}

// healthFlags completes healthOptions with the probed route and, without
// --url, the serve.addr setting.
func healthFlags(_ *cobra.Command, _ []string, o *healthOptions) error {
	o.path = "/v2/health/ready"
	if o.live {
		o.path = "/v2/health/live"
	}
	if o.url == "" {
		host, port, err := net.SplitHostPort(cfg.GetString("serve.addr"))
		if err != nil {
			return usagef("--addr %q: %v", cfg.GetString("serve.addr"), err)
		}
		if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
			host = "127.0.0.1"
		}
		o.url = "http://" + net.JoinHostPort(host, port)
	}
	return nil
}

func (o healthOptions) validate() error {
	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--url %q: want http://HOST:PORT", o.url)
	}
	if o.timeout <= 0 {
		return usagef("--timeout %v: want a positive duration", o.timeout)
	}
	return nil
}

// runHealth probes the server once.
func runHealth(ctx context.Context, o healthOptions, stdout, _ io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url+o.path, nil)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s%s: %s", o.url, o.path, resp.Status)
	}
	fmt.Fprintf(stdout, "%s%s: %s\n", o.url, o.path, resp.Status)
	return nil
}
