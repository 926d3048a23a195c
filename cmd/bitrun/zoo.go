package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bitrun/bitrun/export"
	"github.com/bitrun/bitrun/export/meta"
	"github.com/bitrun/bitrun/model"
	"github.com/bitrun/bitrun/zoo"
)

// zooCatalog is the catalog the zoo commands and --model resolve names in;
// nil means zoo.Default(). Tests replace it.
var zooCatalog *zoo.Catalog

func newZooCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "zoo",
		Short: "List, pull, verify and remove released BiT checkpoints in the local cache",
		Long: `The model zoo: every checkpoint the BiT authors released (BiT-S, BiT-M, the
ILSVRC-2012 and CIFAR-10 fine-tunes, the distilled R50x1 models and the VTAB-1k
fine-tunes), downloaded into a local cache with resumable, verified transfers.

Cache: --cache-dir, BITRUN_ZOO_CACHE_DIR, zoo.cache_dir in the config file, or
os.UserCacheDir()/bitrun. Mirror: --base-url, BITRUN_ZOO_BASE_URL, zoo.base_url.
--offline (BITRUN_ZOO_OFFLINE) never opens a connection. Proxies are taken from
HTTPS_PROXY / HTTP_PROXY / NO_PROXY.

No digests are published upstream: the SHA-256 of the first complete download
is recorded in bitrun.lock.json in the cache and every later read is verified
against it; --sha256 pins one explicitly.`,
	}
	// The subcommands: each with its run and the flags of its own, bound
	// to its options (all take the cache, mirror, offline and retry flags).
	for _, sub := range []struct {
		cmd   *cobra.Command
		run   func(context.Context, zooCmdOptions, io.Writer, io.Writer) error
		flags func(*pflag.FlagSet, *zooCmdOptions) // nil: none of its own
	}{
		{&cobra.Command{
			Use:   "list [FILTER...]",
			Short: "List the catalog: name, architecture, classes, resolution, size and whether it is cached",
			Long: `List every catalog entry, or those whose name contains one of the FILTER words
(case-insensitive). Sizes prefixed with ~ are estimates from the architecture
(no sizes are published); cached files show their size on disk.`,
			Example: `  bitrun zoo list
  bitrun zoo list --cached
  bitrun zoo list R50x1 --json | jq '.[].name'`,
		}, runZooList, func(f *pflag.FlagSet, o *zooCmdOptions) {
			f.BoolVar(&o.json, "json", false, "print JSON (an array of entries with their cache state)")
			f.BoolVar(&o.cached, "cached", false, "only models present in the cache")
			f.StringVar(&o.group, "group", "", "only one group: upstream, ilsvrc2012, cifar10, distilled, vtab")
		}},
		{&cobra.Command{
			Use:   "pull NAME...",
			Short: "Download checkpoints into the cache (resumable, verified), optionally exporting ONNX",
			Long: `Download each named checkpoint into the cache and print its path.

Downloads resume from NAME.part after an interruption (Ctrl-C, a dropped
connection, a restart), stalled transfers are retried with backoff, and the
file is verified (SHA-256, then opened as a BiT checkpoint of the catalog's
architecture) before it is moved into place. Concurrent pulls of one model
download it once. A NAME may carry a digest: BiT-M-R50x1@sha256:HEX.

--onnx also exports NAME.onnx next to the checkpoint (at the catalog's
resolution, with its labels).`,
			Example: `  bitrun zoo pull BiT-M-R50x1
  bitrun zoo pull BiT-M-R50x1-CIFAR10 --onnx
  bitrun zoo pull BiT-S-R50x1 --sha256 3f...   # pin a digest`,
			Args: cobra.MinimumNArgs(1),
		}, runZooPull, func(f *pflag.FlagSet, o *zooCmdOptions) {
			f.BoolVar(&o.onnx, "onnx", false, "also export NAME.onnx next to the checkpoint")
			f.StringVar(&o.pin, "sha256", "", "expected SHA-256 of the file (overrides the catalog and the lock file)")
		}},
		{&cobra.Command{
			Use:   "path [NAME]",
			Short: "Print the cache directory (and where that setting came from), or a cached model's file",
			Args:  cobra.MaximumNArgs(1),
		}, runZooPath, nil},
		{&cobra.Command{
			Use:   "verify [NAME...]",
			Short: "Re-hash cached checkpoints, compare with the recorded or pinned digests and open them",
			Long: `Verify the named models, or every cached model when no NAME is given: the
SHA-256 must match the pinned (--sha256, catalog) or recorded digest and the
file must open as the catalog's architecture. Prints "ok NAME SHA256" per good
file; fails if any file is bad.`,
		}, runZooVerify, func(f *pflag.FlagSet, o *zooCmdOptions) {
			f.StringVar(&o.pin, "sha256", "", "expected SHA-256 (one NAME only)")
		}},
		{&cobra.Command{
			Use:   "rm NAME...",
			Short: "Remove cached checkpoints, partial downloads and their recorded digests",
			Args:  cobra.MinimumNArgs(1),
		}, runZooRm, nil},
		{&cobra.Command{
			Use:   "import FILE --name NAME",
			Short: "Register a checkpoint copied in by hand (air-gapped sites) as a catalog model",
			Long: `Copy FILE into the cache as catalog model NAME after checking that it opens as
NAME's architecture and class count (and matches --sha256 or a pinned digest),
and record its digest so later uses verify against it.`,
			Example: `  bitrun zoo import /media/usb/BiT-M-R50x1.npz --name BiT-M-R50x1`,
			Args:    cobra.ExactArgs(1),
		}, runZooImport, func(f *pflag.FlagSet, o *zooCmdOptions) {
			f.StringVar(&o.name, "name", "", "catalog name of the model (required)")
			f.StringVar(&o.pin, "sha256", "", "expected SHA-256 of FILE")
		}},
	} {
		var o zooCmdOptions
		if sub.flags != nil {
			sub.flags(sub.cmd.Flags(), &o)
		}
		sub.cmd.RunE = runE(bound(&o, zooFlags), sub.run)
		addZooFlags(sub.cmd)
		c.AddCommand(sub.cmd)
	}
	return c
}

// addZooFlags adds the cache, mirror, offline and retry flags to a zoo
// command and binds them to their configuration keys.
func addZooFlags(cmd *cobra.Command) { addZooFlagSet(cmd, true) }

// addZooFlagSet adds --cache-dir and --offline, and with all also --base-url,
// --stall-timeout and --max-attempts (the rest stay reachable through the
// environment and the config file). Flags the command already has are left
// alone. BITRUN_CACHE_DIR is accepted as well as BITRUN_ZOO_CACHE_DIR (see envAliases).
func addZooFlagSet(cmd *cobra.Command, all bool) {
	f := cmd.Flags()
	for _, d := range []struct {
		key, flag string
		core      bool // also on commands that take --model
		define    func()
	}{
		{"zoo.cache_dir", "cache-dir", true, func() { f.String("cache-dir", "", "model cache directory (default: os.UserCacheDir()/bitrun)") }},
		{"zoo.base_url", "base-url", false, func() {
			f.String("base-url", zoo.DefaultBaseURL, "where checkpoints are downloaded from (a mirror with the same layout)")
		}},
		{"zoo.offline", "offline", true, func() { f.Bool("offline", false, "never touch the network: use the cache only") }},
		{"zoo.stall_timeout", "stall-timeout", false, func() {
			f.Duration("stall-timeout", 30*time.Second, "abandon and retry a download that receives nothing for this long")
		}},
		{"zoo.max_attempts", "max-attempts", false, func() { f.Int("max-attempts", 5, "download attempts per file before giving up") }},
	} {
		if !d.core && !all {
			continue
		}
		if f.Lookup(d.flag) == nil {
			d.define()
		}
		bindKey(cmd, d.key, d.flag)
	}
}

// zooCacheSource says where the effective cache directory came from.
func zooCacheSource(cmd *cobra.Command) string {
	src := configSource(cmd, "zoo.cache_dir")
	if src == "default" {
		return "default (os.UserCacheDir()/bitrun)"
	}
	return src
}

// zooOptions builds the library options from the configuration, with progress
// and logs on the command's stderr.
func zooOptions(cmd *cobra.Command) (zoo.Options, error) {
	o := zoo.Options{
		Catalog:  zooCatalog,
		CacheDir: cfg.GetString("zoo.cache_dir"),
		BaseURL:  cfg.GetString("zoo.base_url"),
		Logger:   zooLogger(cmd),
		Progress: zooProgress(cmd.ErrOrStderr()),
	}
	var err error
	if o.Offline, err = configBool(cmd, "zoo.offline"); err != nil {
		return o, err
	}
	if o.StallTimeout, err = configDuration(cmd, "zoo.stall_timeout", 0, 24*time.Hour); err != nil {
		return o, err
	}
	if o.MaxAttempts, err = configInt(cmd, "zoo.max_attempts", 0, 100); err != nil {
		return o, err
	}
	if o.BaseURL != "" && !strings.HasPrefix(o.BaseURL, "http://") && !strings.HasPrefix(o.BaseURL, "https://") {
		return o, usagef("--base-url %q: want an http:// or https:// URL", o.BaseURL)
	}
	return o, nil
}

// zooLogger logs warnings and errors (info and below with --log-level) on the
// command's stderr.
func zooLogger(cmd *cobra.Command) *slog.Logger {
	lvl := slog.LevelWarn
	if configSource(cmd, "log.level") != "default" { // the flag, BITRUN_LOG_LEVEL or the config file
		_ = lvl.UnmarshalText([]byte(cfg.GetString("log.level"))) // checked by checkGlobalConfig
	}
	return slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
}

// zooCmdOptions is what a zoo subcommand works on: bound to the flags the
// subcommand takes (newZooCmd), completed by zooFlags and checked by
// validate.
type zooCmdOptions struct {
	args        []string    // NAMEs (a FILTER for list, the FILE for import)
	zoo         zoo.Options // cache, mirror, network and, with --sha256, the pinned digest
	cacheSource string      // where the cache folder setting came from
	importing   bool        // import: --name is required
	name        string      // import --name
	pin         string      // --sha256 (pull, verify, import), set as zoo.SHA256 by zooFlags
	onnx        bool        // pull --onnx
	json        bool        // list --json
	cached      bool        // list --cached
	group       string      // list --group
}

// zooFlags completes a subcommand's options with its arguments and the zoo
// settings.
func zooFlags(cmd *cobra.Command, args []string, o *zooCmdOptions) error {
	o.args, o.importing, o.cacheSource = args, cmd.Name() == "import", zooCacheSource(cmd)
	var err error
	if o.zoo, err = zooOptions(cmd); err != nil {
		return err
	}
	o.zoo.SHA256 = o.pin
	return nil
}

// validate checks the flags a subcommand takes against its arguments.
func (o zooCmdOptions) validate() error {
	if o.importing && o.name == "" {
		return usagef("--name NAME is required (the catalog model this file is)")
	}
	if pin := o.zoo.SHA256; pin != "" {
		if len(o.args) != 1 {
			return usagef("--sha256 pins one file: give exactly one NAME")
		}
		if _, err := zoo.ParseDigest(pin); err != nil {
			return usagef("--sha256: %v", err)
		}
	}
	return nil
}

// runZooList prints the catalog entries matching o.args on stdout.
func runZooList(_ context.Context, o zooCmdOptions, stdout, stderr io.Writer) error {
	items, err := zoo.List(o.zoo)
	if err != nil {
		return err
	}
	sel := items[:0]
	for _, it := range items {
		if o.cached && !it.Cached {
			continue
		}
		if o.group != "" && !strings.EqualFold(o.group, it.Group) {
			continue
		}
		if len(o.args) > 0 && !containsAny(it.Name, o.args) {
			continue
		}
		sel = append(sel, it)
	}
	if o.json {
		if sel == nil {
			sel = []zoo.Item{}
		}
		return writeJSON(stdout, sel)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tARCH\tCLASSES\tRES\tSIZE\tCACHED")
	for _, it := range sel {
		size := "~" + byteSize(it.Estimate)
		if it.Size > 0 {
			size = byteSize(it.Size)
		}
		state := "-"
		switch {
		case it.Cached:
			state, size = "yes", byteSize(it.Bytes)
		case it.Partial > 0:
			state = "partial " + byteSize(it.Partial)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", it.Name, it.Arch, it.Classes, it.Resolution, size, state)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(sel) == 0 {
		fmt.Fprintln(stderr, "no matching models")
	}
	return nil
}

func containsAny(name string, words []string) bool {
	l := strings.ToLower(name)
	for _, w := range words {
		if strings.Contains(l, strings.ToLower(w)) {
			return true
		}
	}
	return false
}

// runZooPull pulls every named model and prints its path (and its export's
// with --onnx) on stdout.
func runZooPull(ctx context.Context, o zooCmdOptions, stdout, stderr io.Writer) error {
	for _, name := range o.args {
		res, err := zoo.Pull(ctx, name, o.zoo)
		if err != nil {
			return offlineHint(err, name)
		}
		if res.Cached {
			fmt.Fprintf(stderr, "%s: cached, sha256 %s\n", res.Entry.Name, res.SHA256)
		} else {
			fmt.Fprintf(stderr, "%s: pulled %s, sha256 %s\n", res.Entry.Name, byteSize(res.Size), res.SHA256)
		}
		fmt.Fprintln(stdout, res.Path)
		if o.onnx {
			path, err := exportPulled(ctx, res, o.zoo.Logger, stderr)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, path)
		}
	}
	return nil
}

// exportPulled writes the ONNX export of a pulled checkpoint next to it,
// unless an export newer than the checkpoint is already there; progress
// goes to stderr, a label file that does not fit to log.
func exportPulled(ctx context.Context, res zoo.Result, log *slog.Logger, stderr io.Writer) (string, error) {
	out := strings.TrimSuffix(res.Path, ".npz") + ".onnx"
	if st, err := os.Stat(out); err == nil {
		if src, err := os.Stat(res.Path); err == nil && st.ModTime().After(src.ModTime()) && !res.Recorded {
			fmt.Fprintf(stderr, "%s: ONNX export already present\n", res.Entry.Name)
			return out, nil
		}
	}
	m, err := model.Load(res.Path)
	if err != nil {
		return "", err
	}
	var labels []string
	if res.Labels != "" {
		b, err := os.ReadFile(res.Labels)
		if err != nil {
			return "", fmt.Errorf("zoo: reading labels: %w", err)
		}
		if labels, err = meta.ParseLabels(string(b)); err != nil || len(labels) != m.Config.Classes {
			log.Warn("label file does not fit the model; exporting without labels",
				"labels", res.Labels, "count", len(labels), "classes", m.Config.Classes)
			labels = nil
		}
	}
	version, _ := buildVersion()
	r, err := export.Export(ctx, out, m.Config, m.Params, export.Options{
		Resolution: res.Entry.Resolution, Labels: labels, SourceSHA: res.SHA256, Version: version,
		Progress: byteProgress(stderr, "export", m.Params.Count()*4),
	})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(stderr, "%s: exported %s (%s)\n", res.Entry.Name, r.Path, byteSize(r.Bytes+r.DataBytes))
	return r.Path, nil
}

// runZooPath prints the cache folder (and where that setting came from), or
// the file of the named cached model.
func runZooPath(_ context.Context, o zooCmdOptions, stdout, stderr io.Writer) error {
	if len(o.args) == 0 {
		dir, err := zoo.CacheDir(o.zoo)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, dir)
		fmt.Fprintf(stderr, "cache dir from %s\n", o.cacheSource)
		return nil
	}
	it, err := zoo.Locate(o.args[0], o.zoo)
	if err != nil {
		return err
	}
	if !it.Cached {
		return fmt.Errorf("%w: %s (it would be at %s; run `bitrun zoo pull %s`)", zoo.ErrNotCached, it.Name, it.Path, it.Name)
	}
	fmt.Fprintln(stdout, it.Path)
	return nil
}

// runZooVerify verifies the named models, or every cached one: "ok NAME
// SHA256" on stdout per good file, failures on stderr.
func runZooVerify(ctx context.Context, o zooCmdOptions, stdout, stderr io.Writer) error {
	names := o.args
	if len(names) == 0 {
		items, err := zoo.List(o.zoo)
		if err != nil {
			return err
		}
		for _, it := range items {
			if it.Cached {
				names = append(names, it.Name)
			}
		}
		if len(names) == 0 {
			fmt.Fprintln(stderr, "no models in the cache")
			return nil
		}
	}
	var failed []string
	for _, name := range names {
		res, err := zoo.Verify(ctx, name, o.zoo)
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			fmt.Fprintf(stderr, "FAILED %s: %v\n", name, err)
			failed = append(failed, name)
			continue
		}
		fmt.Fprintf(stdout, "ok %s %s\n", res.Entry.Name, res.SHA256)
	}
	if len(failed) > 0 {
		return fmt.Errorf("zoo: verification failed for %s", strings.Join(failed, ", "))
	}
	return nil
}

// runZooRm removes the named models from the cache.
func runZooRm(ctx context.Context, o zooCmdOptions, _, stderr io.Writer) error {
	var errs []error
	for _, name := range o.args {
		if err := zoo.Remove(ctx, name, o.zoo); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(stderr, "removed %s\n", name)
	}
	return errors.Join(errs...)
}

// runZooImport copies the FILE argument into the cache as model o.name.
func runZooImport(ctx context.Context, o zooCmdOptions, stdout, stderr io.Writer) error {
	res, err := zoo.Import(ctx, o.args[0], o.name, o.zoo)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "%s: imported %s, sha256 %s\n", res.Entry.Name, byteSize(res.Size), res.SHA256)
	fmt.Fprintln(stdout, res.Path)
	return nil
}

// zooProgress renders pull progress on w: a redrawn bar on a terminal, plain
// lines (every 10% and at phase changes) otherwise.
func zooProgress(w io.Writer) func(zoo.Progress) {
	tty := isTerminal(w)
	var (
		phase     zoo.Phase
		file      string
		start     time.Time
		startDone int64
		lastPct   = int64(-1)
		lastLine  time.Time
		open      bool // a bar line is waiting for its newline
	)
	endLine := func() {
		if open {
			fmt.Fprintln(w)
			open = false
		}
	}
	return func(p zoo.Progress) {
		if p.Phase != phase || p.File != file {
			endLine()
			phase, file, start, startDone, lastPct = p.Phase, p.File, time.Now(), p.Done, -1
			switch p.Phase {
			case zoo.PhaseWait:
				fmt.Fprintf(w, "%s: waiting for another bitrun pulling %s\n", p.Name, p.File)
			case zoo.PhaseCheck:
				fmt.Fprintf(w, "%s: checking the checkpoint\n", p.Name)
			case zoo.PhaseRetry:
				fmt.Fprintf(w, "%s: attempt %d failed (%v); retrying in %v\n", p.Name, p.Attempt, p.Err, p.Wait.Round(time.Millisecond))
			}
		}
		if p.Phase == zoo.PhaseRetry {
			phase = "" // a new download attempt starts a fresh line
			return
		}
		if p.Phase != zoo.PhaseDownload && p.Phase != zoo.PhaseVerify {
			return
		}
		if p.Phase == zoo.PhaseDownload && p.Resumed > 0 && p.Done == p.Resumed && lastPct < 0 {
			fmt.Fprintf(w, "%s: resuming %s at %s\n", p.Name, p.File, byteSize(p.Resumed))
		}
		verb := "downloading"
		if p.Phase == zoo.PhaseVerify {
			verb = "verifying"
		}
		what := p.Name
		if !strings.HasSuffix(p.File, ".npz") {
			what += " " + path.Base(p.File) // the label file
		}
		elapsed := time.Since(start).Seconds()
		rate := float64(p.Done-startDone) / max(elapsed, 1e-3)
		line := fmt.Sprintf("%s: %s %s", what, verb, byteSize(p.Done))
		pct := int64(-1)
		if p.Total > 0 {
			pct = 100 * p.Done / p.Total
			line = fmt.Sprintf("%s: %s %s %3d%% %s / %s", what, verb, zooBar(pct, 24), pct, byteSize(p.Done), byteSize(p.Total))
		}
		if elapsed > 0.2 && rate > 0 {
			line += fmt.Sprintf("  %s/s", byteSize(int64(rate)))
			if p.Total > 0 && p.Done < p.Total {
				eta := time.Duration(float64(p.Total-p.Done) / rate * float64(time.Second))
				line += "  ETA " + eta.Round(time.Second).String()
			}
		}
		if tty {
			fmt.Fprintf(w, "\r%s\x1b[K", line)
			open = true
			if p.Total > 0 && p.Done >= p.Total {
				endLine()
			}
			return
		}
		unknownDue := pct < 0 && time.Since(lastLine) >= 5*time.Second
		if unknownDue || (pct >= 0 && pct/10 != lastPct/10) || (p.Total > 0 && p.Done >= p.Total && lastPct != 100) {
			lastPct, lastLine = pct, time.Now()
			fmt.Fprintln(w, line)
		}
	}
}

func zooBar(pct int64, width int) string {
	n := int(pct) * width / 100
	n = min(max(n, 0), width)
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}

// offlineHint adds to a pull that failed for want of a network how to go
// on without one.
func offlineHint(err error, name string) error {
	var ue *url.Error
	var ne net.Error
	if !errors.As(err, &ue) && !errors.As(err, &ne) && !errors.Is(err, zoo.ErrOffline) {
		return err
	}
	return fmt.Errorf("%w\nwithout a network: pull from a mirror with --base-url URL (BITRUN_ZOO_BASE_URL, zoo.base_url), "+
		"or copy the file in by other means and register it with: bitrun zoo import FILE --name %s", err, name)
}
