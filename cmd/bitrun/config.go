package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

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
	cfg.SetDefault(key, f.DefValue)
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
			if b.cmd == cmd {
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
	cfg.SetConfigFile(path)
	if err := cfg.ReadInConfig(); err != nil {
		var notFound viper.ConfigFileNotFoundError
		if !explicit && (errors.As(err, &notFound) || errors.Is(err, os.ErrNotExist) || os.IsNotExist(errors.Unwrap(err))) {
			return nil
		}
		if _, statErr := os.Stat(path); !explicit && os.IsNotExist(statErr) {
			return nil
		}
		return fmt.Errorf("config: reading %s: %w", path, err)
	}
	return nil
}

// configSource tells where the effective value of key came from.
func configSource(cmd *cobra.Command, key string) string {
	k := configKeys[key]
	for _, b := range flagBindings[key] {
		if b.cmd == cmd && b.flag.Changed {
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

func init() {
	register(func() *cobra.Command {
		c := &cobra.Command{Use: "config", Short: "Show the effective configuration"}
		c.AddCommand(&cobra.Command{
			Use:   "show",
			Short: "Print every configuration key, its value and where it came from",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				keys := make([]string, 0, len(configKeys))
				for k := range configKeys {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				out := cmd.OutOrStdout()
				for _, k := range keys {
					fmt.Fprintf(out, "%-24s %-40v (%s; env %s)\n", k, cfg.Get(k), configSource(cmd, k), strings.Join(configKeys[k].env, ", "))
				}
				return nil
			},
		})
		return c
	})
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

func rangeText(lo, hi int) string {
	if hi == math.MaxInt {
		return fmt.Sprintf("an integer >= %d", lo)
	}
	return fmt.Sprintf("an integer from %d to %d", lo, hi)
}
