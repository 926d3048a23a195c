package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/bitrun/bitrun/runtime"
	"github.com/spf13/cobra"
)

// Shared ONNX Runtime flags. addORTFlags puts them on a command that runs
// ONNX models; ortOptions reads their effective values (flag > BITRUN_ORT_*
// env > config file > default).
func addORTFlags(cmd *cobra.Command) {
	cmd.Flags().String("ort-lib", "", "path to libonnxruntime.so (default: $BITRUN_ORT_LIB, then third_party/onnxruntime/ next to the binary or above the working directory, then the system loader)")
	cmd.Flags().String("provider", "cpu", "ONNX Runtime execution provider: cpu, cuda or auto (CUDA when it works, else CPU)")
	cmd.Flags().Int("threads", 0, "ONNX Runtime intra-op threads (0 = one per core)")
	// Spinning is off by default: on a busy 2-core host it doubled the CPU
	// time per image of R50x1 and tripled its latency (see the bench figures
	// in the README); turn it on for a dedicated machine.
	cmd.Flags().Bool("ort-spin", false, "let idle ONNX Runtime threads spin-wait (can lower latency on a dedicated machine; wastes CPU on a shared one)")
	bindKey(cmd, "ort.lib", "ort-lib")
	bindKey(cmd, "ort.spin", "ort-spin")
	bindKey(cmd, "ort.provider", "provider")
	bindKey(cmd, "ort.threads", "threads")
}

// ortOptions returns the runtime options of the ORT flags.
func ortOptions(cmd *cobra.Command) (runtime.Options, error) {
	o := runtime.Options{LibraryPath: cfg.GetString("ort.lib"), Logger: cliLogger(cmd)}
	var err error
	if o.Provider, err = configEnum(cmd, "ort.provider", runtime.ProviderCPU, runtime.ProviderCUDA, runtime.ProviderAuto); err != nil {
		return o, err
	}
	if o.IntraThreads, err = configInt(cmd, "ort.threads", 0, 1024); err != nil {
		return o, err
	}
	spin, err := configBool(cmd, "ort.spin")
	if err != nil {
		return o, err
	}
	if !spin {
		o.SessionConfig = map[string]string{"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}
	}
	return o, nil
}

// cliLogger is a text logger on stderr at the --log-level of the root command.
func cliLogger(cmd *cobra.Command) *slog.Logger {
	lvl := slog.LevelInfo
	_ = lvl.UnmarshalText([]byte(cfg.GetString("log.level"))) // checked by checkGlobalConfig
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

func init() {
	versionLines = append(versionLines, func() (string, string) {
		v, err := runtime.Version(runtime.Options{LibraryPath: cfg.GetString("ort.lib")})
		if err != nil {
			return "onnxruntime", fmt.Sprintf("unavailable: %v", err)
		}
		return "onnxruntime", v
	})
}
