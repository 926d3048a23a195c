package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/bitrun/bitrun/data"
	"github.com/bitrun/bitrun/nn"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// cfg is the process-wide configuration: flags > BITRUN_* env > config file > defaults.
var cfg = viper.New()

// configKey is one configuration key bound to a flag and an environment variable.
type configKey struct {
	key  string   // viper key, e.g. "zoo.cache_dir"
	flag string   // flag name on the commands that take it
	env  []string // environment variables, the first one winning
}

// envAliases are extra environment variables accepted for a key, after the
// one derived from its name.
var envAliases = map[string][]string{
	"zoo.cache_dir": {"BITRUN_CACHE_DIR"},
}

var configKeys = map[string]configKey{}

// bindKey declares that flag (already defined on cmd) sets key. The environment
// variable is BITRUN_ + the key upper-cased with dots as underscores.
func bindKey(cmd *cobra.Command, key, flag string) {
	env := "BITRUN_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
	envs := append([]string{env}, envAliases[key]...)
	configKeys[key] = configKey{key: key, flag: flag, env: envs}
	f := cmd.Flags().Lookup(flag)
	if f == nil {
		f = cmd.PersistentFlags().Lookup(flag)
	}
	if f == nil {
		panic("bindKey: no flag " + flag + " on " + cmd.Name())
	}
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		// A list flag's DefValue is its text, "[]" for an empty list.
		cfg.SetDefault(key, sv.GetSlice())
	} else {
		cfg.SetDefault(key, f.DefValue)
	}
	_ = cfg.BindEnv(append([]string{key}, envs...)...)
	// Bind the flag of the command actually run in loadConfig: one key may be
	// bound to flags of several commands.
	flagBindings[key] = append(flagBindings[key], flagBinding{cmd: cmd, flag: f})
}

type flagBinding struct {
	cmd  *cobra.Command
	flag *pflag.Flag
}

var flagBindings = map[string][]flagBinding{}

func loadConfig(cmd *cobra.Command) error {
	for key, bs := range flagBindings {
		for _, b := range bs {
			if b.cmd == cmd || b.cmd == cmd.Root() {
				if err := cfg.BindPFlag(key, b.flag); err != nil {
					return err
				}
			}
		}
	}
	path, _ := cmd.Flags().GetString("config")
	explicit := path != ""
	if !explicit {
		path = os.Getenv("BITRUN_CONFIG")
		explicit = path != ""
	}
	if !explicit {
		if dir, err := os.UserConfigDir(); err == nil {
			path = filepath.Join(dir, "bitrun", "config.yaml")
		}
	}
	if path == "" {
		return nil
	}
	configFile.path, configFile.found = path, false
	switch {
	case cmd.Flags().Changed("config"):
		configFile.chosen = "flag --config"
	case explicit:
		configFile.chosen = "env BITRUN_CONFIG"
	default:
		configFile.chosen = "default location"
	}
	cfg.SetConfigFile(path)
	if err := cfg.ReadInConfig(); err != nil {
		var notFound viper.ConfigFileNotFoundError
		if !explicit && (errors.As(err, &notFound) || errors.Is(err, os.ErrNotExist) || os.IsNotExist(errors.Unwrap(err))) {
			return checkGlobalConfig(cmd)
		}
		if _, statErr := os.Stat(path); !explicit && os.IsNotExist(statErr) {
			return checkGlobalConfig(cmd)
		}
		return fmt.Errorf("config: reading %s: %w", path, err)
	}
	configFile.found = true
	if unknown := unknownConfigKeys(); len(unknown) > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "bitrun: warning: %s: unknown keys ignored: %s (bitrun config show lists the known ones)\n",
			path, strings.Join(unknown, ", "))
	}
	return checkGlobalConfig(cmd)
}

// logLevels are the values of --log-level.
var logLevels = []string{"debug", "info", "warn", "error"}

// checkGlobalConfig validates the settings every command reads.
func checkGlobalConfig(cmd *cobra.Command) error {
	_, err := configEnum(cmd, "log.level", logLevels...)
	return err
}

// configSource tells where the effective value of key came from.
func configSource(cmd *cobra.Command, key string) string {
	k := configKeys[key]
	for _, b := range flagBindings[key] {
		if (b.cmd == cmd || b.cmd == cmd.Root()) && b.flag.Changed {
			return "flag --" + k.flag
		}
	}
	for _, env := range k.env {
		if _, ok := os.LookupEnv(env); ok {
			return "env " + env
		}
	}
	if cfg.InConfig(key) {
		return "config " + cfg.ConfigFileUsed()
	}
	return "default"
}

// configFile is the config file loadConfig read ("" when none) and how it
// was chosen.
var configFile struct {
	path, chosen string
	found        bool
}

// unknownConfigKeys lists the keys of the config file that no command
// binds: typos, or settings of another version.
func unknownConfigKeys() []string {
	var unknown []string
	for _, k := range cfg.AllKeys() {
		if _, ok := configKeys[k]; !ok && cfg.InConfig(k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	return unknown
}

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Show the effective configuration"}
	c.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Print every configuration key, its value and where it came from",
		Args:  cobra.NoArgs,
		RunE:  runE(configShowFlags, runConfigShow),
	})
	return c
}

// configShowOptions is what config show prints, read by configShowFlags:
// the config file in use and every key with its effective value and
// source.
type configShowOptions struct {
	path, chosen string // config file and how it was chosen; "" when none
	found        bool
	unknown      []string    // keys of the file no command binds
	rows         [][4]string // key, value, source, environment variables
}

// configShowFlags reads the effective configuration, sorted by key; the
// environment-only settings (GEMM backend, JPEG decoder) close the list.
func configShowFlags(cmd *cobra.Command, _ []string) (configShowOptions, error) {
	o := configShowOptions{path: configFile.path, chosen: configFile.chosen, found: configFile.found, unknown: unknownConfigKeys()}
	keys := make([]string, 0, len(configKeys))
	for k := range configKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := cfg.GetString(k)
		if v == "" {
			v = `""`
		}
		src := configSource(cmd, k)
		if strings.HasPrefix(src, "config ") {
			src = "config file"
		}
		o.rows = append(o.rows, [4]string{k, v, src, strings.Join(configKeys[k].env, ", ")})
	}
	for _, e := range envOnly {
		v, src := e.effective()
		o.rows = append(o.rows, [4]string{e.key, v, src, e.env})
	}
	return o, nil
}

func (configShowOptions) validate() error { return nil }

// runConfigShow prints the config file in use, then every key with its
// effective value, its source and its environment variables, aligned.
func runConfigShow(_ context.Context, o configShowOptions, out, _ io.Writer) error {
	state := "not found"
	if o.found {
		state = "read"
	}
	if o.path == "" {
		fmt.Fprintln(out, "config file: none (no user config directory)")
	} else {
		fmt.Fprintf(out, "config file: %s (%s; %s)\n", o.path, o.chosen, state)
	}
	if len(o.unknown) > 0 {
		fmt.Fprintf(out, "unknown keys in it (ignored): %s\n", strings.Join(o.unknown, ", "))
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE\tENV")
	for _, r := range o.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r[0], r[1], r[2], r[3])
	}
	return tw.Flush()
}

// envOnly are settings read from the environment alone, by the packages
// that use them (nn's GEMM backend, data's JPEG decoder); config show lists
// them with their effective value.
var envOnly = []struct {
	key, env  string
	effective func() (value, source string)
}{
	{"gemm", "BITRUN_GEMM", func() (string, string) {
		return nn.Backend().Name(), envSource("BITRUN_GEMM", "auto")
	}},
	{"jpeg", "BITRUN_JPEG", func() (string, string) {
		name := "unavailable"
		if d, err := data.JPEGDecoder(); err == nil {
			name = d
		}
		return name, envSource("BITRUN_JPEG", "auto")
	}},
}

func envSource(env, def string) string {
	if v, ok := os.LookupEnv(env); ok {
		return fmt.Sprintf("env %s=%s", env, v)
	}
	return "default (" + def + ")"
}

func isCobraArgError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "unknown command") || strings.Contains(msg, "accepts ") ||
		strings.Contains(msg, "requires at least") || strings.Contains(msg, "unknown flag") ||
		strings.Contains(msg, "required flag")
}

// configValueError reports a bad configuration value: the key, the value
// as given, where it came from (flag, environment variable, config file)
// and what is allowed. It is a usage error.
func configValueError(cmd *cobra.Command, key, raw, problem, allowed string) error {
	name := key
	if k, ok := configKeys[key]; ok && k.flag != "" {
		name = "--" + k.flag + " (" + key + ")"
	}
	return usagef("%s: %q from %s %s; allowed: %s", name, raw, configSource(cmd, key), problem, allowed)
}

// configInt reads key as an integer in [lo, hi], failing with
// configValueError (not a silent 0) when it does not parse or is out of
// range.
func configInt(cmd *cobra.Command, key string, lo, hi int) (int, error) {
	raw := cfg.GetString(key)
	v, err := strconv.Atoi(strings.TrimSpace(raw))
	if err != nil {
		return 0, configValueError(cmd, key, raw, "is not an integer", rangeText(lo, hi))
	}
	if v < lo || v > hi {
		return 0, configValueError(cmd, key, raw, "is out of range", rangeText(lo, hi))
	}
	return v, nil
}

// intKey is an integer configuration key in [lo, hi], read into dst by
// configInts.
type intKey struct {
	key    string
	lo, hi int
	dst    *int
}

// configInts reads keys in order with configInt, stopping at the first
// bad value.
func configInts(cmd *cobra.Command, keys ...intKey) error {
	for _, k := range keys {
		var err error
		if *k.dst, err = configInt(cmd, k.key, k.lo, k.hi); err != nil {
			return err
		}
	}
	return nil
}

// configByteSize reads key as a size of at least one byte ("16MiB",
// "512KiB", a byte count); example is shown in the error.
func configByteSize(cmd *cobra.Command, key, example string) (int64, error) {
	raw := cfg.GetString(key)
	v, err := parseByteSize(raw) // under 1 byte is an error there
	if err != nil {
		return 0, configValueError(cmd, key, raw, "is not a size", "a size of at least 1 byte such as "+example+", or a byte count")
	}
	return v, nil
}

// configDuration reads key as a Go duration ("250ms", "30s") in [lo, hi].
func configDuration(cmd *cobra.Command, key string, lo, hi time.Duration) (time.Duration, error) {
	raw := cfg.GetString(key)
	v, err := time.ParseDuration(strings.TrimSpace(raw))
	allowed := fmt.Sprintf("a duration from %v to %v (e.g. 250ms, 30s)", lo, hi)
	if err != nil {
		return 0, configValueError(cmd, key, raw, "is not a duration", allowed)
	}
	if v < lo || v > hi {
		return 0, configValueError(cmd, key, raw, "is out of range", allowed)
	}
	return v, nil
}

// configUint64 reads key as an unsigned integer (a seed).
func configUint64(cmd *cobra.Command, key string) (uint64, error) {
	raw := cfg.GetString(key)
	v, err := strconv.ParseUint(strings.TrimSpace(raw), 10, 64)
	if err != nil {
		return 0, configValueError(cmd, key, raw, "is not an unsigned integer", "an integer from 0 to 18446744073709551615")
	}
	return v, nil
}

// configBool reads key as a boolean.
func configBool(cmd *cobra.Command, key string) (bool, error) {
	raw := cfg.GetString(key)
	v, err := strconv.ParseBool(strings.TrimSpace(raw))
	if err != nil {
		return false, configValueError(cmd, key, raw, "is not a boolean", "true or false (1, 0, t, f)")
	}
	return v, nil
}

// configList reads a list setting: a flag's values or a config file's list
// as they are, a single text (an environment variable, a config string)
// split at commas and white space (viper split at white space only).
func configList(key string) []string {
	if s, ok := cfg.Get(key).(string); ok {
		return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
	}
	return cfg.GetStringSlice(key)
}

// configEnum reads key as one of allowed (case-insensitive; returned
// lower-cased). An empty allowed value accepts the empty string.
func configEnum(cmd *cobra.Command, key string, allowed ...string) (string, error) {
	raw := cfg.GetString(key)
	v := strings.ToLower(strings.TrimSpace(raw))
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	var shown []string
	for _, a := range allowed {
		if a != "" {
			shown = append(shown, a)
		}
	}
	return "", configValueError(cmd, key, raw, "is not a known value", "one of "+strings.Join(shown, ", "))
}

func rangeText(lo, hi int) string {
	if hi == math.MaxInt {
		return fmt.Sprintf("an integer >= %d", lo)
	}
	return fmt.Sprintf("an integer from %d to %d", lo, hi)
}
