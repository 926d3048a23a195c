//go:build cgo

package ort

import (
	"context"
	"errors"
	"fmt"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Process-wide library state. ONNX Runtime has one environment per process.
var (
	libMu      sync.Mutex
	libPath    string               // path the environment was initialised from ("" = none yet)
	libVersion string               // version of the loaded library
	libErrs    = map[string]error{} // remembered load failures by resolved path
)

// Load loads and initialises the ONNX Runtime library once per process and
// returns its version. explicit may be empty (see Resolve). A missing file is
// reported without touching the process state; a failed load of an existing
// file is remembered and returned again for the same path. Once a library is
// loaded, asking for a different file is an error.
func Load(explicit string) (version string, err error) {
	path, searched := Resolve(explicit)
	if path != "" {
		if err := checkFile(path, searched); err != nil {
			return "", err
		}
	}
	name := path
	if name == "" {
		name = systemName
	}
	libMu.Lock()
	defer libMu.Unlock()
	if libPath != "" {
		if explicit != "" && name != libPath {
			return "", fmt.Errorf("ort: onnx runtime already loaded from %s in this process; cannot load %s as well", libPath, name)
		}
		return libVersion, nil
	}
	if err, ok := libErrs[name]; ok {
		return "", err
	}
	ortgo.SetSharedLibraryPath(name)
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelError()); err != nil {
		if path == "" {
			err = notFound(searched, err)
		} else {
			err = fmt.Errorf("ort: loading %s: %w: %s", name, err, setupHint)
		}
		libErrs[name] = err
		return "", err
	}
	v := ortgo.GetVersion()
	if err := checkVersion(v); err != nil {
		_ = ortgo.DestroyEnvironment()
		err = fmt.Errorf("%w (from %s)", err, name)
		libErrs[name] = err
		return "", err
	}
	libPath, libVersion = name, v
	return v, nil
}

// Loaded returns the path and version of the loaded library, or empty strings.
func Loaded() (path, version string) {
	libMu.Lock()
	defer libMu.Unlock()
	return libPath, libVersion
}

// Session is one ONNX Runtime inference session over a model with a single
// float32 input. Run is safe for concurrent use (ONNX Runtime's Run is
// thread-safe and the session keeps no per-call state); Close must not race
// with Run and is idempotent.
type Session struct {
	mu       sync.RWMutex
	sess     *ortgo.DynamicAdvancedSession
	inputs   []IOInfo
	outputs  []IOInfo
	metadata map[string]string
}

// NewSession opens the model at modelPath. Load must have succeeded first.
func NewSession(modelPath string, opts SessionOptions) (s *Session, err error) {
	if p, _ := Loaded(); p == "" {
		return nil, fmt.Errorf("ort: library not loaded: call Load first")
	}
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: session options: %w", err)
	}
	defer so.Destroy()
	if opts.IntraThreads > 0 {
		if err := so.SetIntraOpNumThreads(opts.IntraThreads); err != nil {
			return nil, fmt.Errorf("ort: intra-op threads %d: %w", opts.IntraThreads, err)
		}
	}
	if opts.InterThreads > 0 {
		if err := so.SetInterOpNumThreads(opts.InterThreads); err != nil {
			return nil, fmt.Errorf("ort: inter-op threads %d: %w", opts.InterThreads, err)
		}
	}
	for k, v := range opts.Config {
		if err := so.AddSessionConfigEntry(k, v); err != nil {
			return nil, fmt.Errorf("ort: session config %s=%s: %w", k, v, err)
		}
	}
	if opts.OptimizedModelPath != "" {
		if err := so.SetOptimizedModelFilePath(opts.OptimizedModelPath); err != nil {
			return nil, fmt.Errorf("ort: optimized model path: %w", err)
		}
	}
	if opts.ProfilePrefix != "" {
		if err := so.EnableProfiling(opts.ProfilePrefix); err != nil {
			return nil, fmt.Errorf("ort: profiling: %w", err)
		}
	}
	if opts.CUDA {
		if err := appendCUDA(so, opts.CUDADevice); err != nil {
			return nil, err
		}
	}
	ins, outs, err := ioInfo(modelPath)
	if err != nil {
		return nil, err
	}
	s = &Session{inputs: convertInfo(ins), outputs: convertInfo(outs)}
	inNames := make([]string, len(ins))
	for i, in := range ins {
		inNames[i] = in.Name
	}
	outNames := make([]string, len(outs))
	for i, o := range outs {
		outNames[i] = o.Name
	}
	s.sess, err = ortgo.NewDynamicAdvancedSession(modelPath, inNames, outNames, so)
	if err != nil {
		return nil, fmt.Errorf("ort: opening %s: %w", modelPath, err)
	}
	md, err := s.sess.GetModelMetadata()
	if err == nil {
		s.metadata, err = customMetadata(md)
		md.Destroy()
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("ort: metadata of %s: %w", modelPath, err), s.Close())
	}
	return s, nil
}

// ioInfo reads the input and output descriptions through a throw-away CPU
// session with graph optimisations off (cheap to build, whatever the
// providers of the real session).
func ioInfo(modelPath string) (ins, outs []ortgo.InputOutputInfo, err error) {
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, nil, fmt.Errorf("ort: session options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetGraphOptimizationLevel(ortgo.GraphOptimizationLevelDisableAll); err != nil {
		return nil, nil, fmt.Errorf("ort: session options: %w", err)
	}
	_ = so.SetIntraOpNumThreads(1)
	ins, outs, err = ortgo.GetInputOutputInfoWithOptions(modelPath, so)
	if err != nil {
		return nil, nil, fmt.Errorf("ort: reading %s: %w", modelPath, err)
	}
	return ins, outs, nil
}

func appendCUDA(so *ortgo.SessionOptions, device int) error {
	co, err := ortgo.NewCUDAProviderOptions()
	if err != nil {
		return fmt.Errorf("ort: cuda provider options: %w", err)
	}
	defer co.Destroy()
	if err := co.Update(map[string]string{"device_id": fmt.Sprint(device)}); err != nil {
		return fmt.Errorf("ort: cuda provider options: %w", err)
	}
	if err := so.AppendExecutionProviderCUDA(co); err != nil {
		return fmt.Errorf("ort: cuda execution provider: %w", err)
	}
	return nil
}

func convertInfo(in []ortgo.InputOutputInfo) []IOInfo {
	out := make([]IOInfo, len(in))
	for i, v := range in {
		out[i] = IOInfo{
			Name:     v.Name,
			Shape:    append([]int64(nil), v.Dimensions...),
			Float:    v.DataType == ortgo.TensorElementDataTypeFloat,
			ElemType: ortgo.TensorElementDataType(v.DataType).String(),
			IsTensor: v.OrtValueType == ortgo.ONNXTypeTensor,
		}
	}
	return out
}

func customMetadata(md *ortgo.ModelMetadata) (map[string]string, error) {
	keys, err := md.GetCustomMetadataMapKeys()
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(keys))
	for _, k := range keys {
		v, ok, err := md.LookupCustomMetadataMap(k)
		if err != nil {
			return nil, err
		}
		if ok {
			m[k] = v
		}
	}
	return m, nil
}

// Inputs describes the model inputs.
func (s *Session) Inputs() []IOInfo { return cloneInfo(s.inputs) }

// Outputs describes the model outputs.
func (s *Session) Outputs() []IOInfo { return cloneInfo(s.outputs) }

// Metadata returns a copy of the model's custom metadata map.
func (s *Session) Metadata() map[string]string {
	m := make(map[string]string, len(s.metadata))
	for k, v := range s.metadata {
		m[k] = v
	}
	return m
}

func cloneInfo(in []IOInfo) []IOInfo {
	out := make([]IOInfo, len(in))
	for i, v := range in {
		v.Shape = append([]int64(nil), v.Shape...)
		out[i] = v
	}
	return out
}

// Run feeds data (shape must match, len(data) == product(shape)) as the one
// input and returns every float32 output in model order. Cancelling ctx asks
// ONNX Runtime to terminate the run.
func (s *Session) Run(ctx context.Context, data []float32, shape []int64) ([]Tensor, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.sess == nil {
		return nil, ErrClosed
	}
	if len(s.inputs) != 1 {
		return nil, fmt.Errorf("ort: model has %d inputs, want 1", len(s.inputs))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in, err := ortgo.NewTensor(ortgo.NewShape(shape...), data)
	if err != nil {
		return nil, fmt.Errorf("ort: input tensor %v: %w", shape, err)
	}
	defer in.Destroy()
	var ro *ortgo.RunOptions
	if ctx.Done() != nil {
		ro, err = ortgo.NewRunOptions()
		if err != nil {
			return nil, fmt.Errorf("ort: run options: %w", err)
		}
		defer ro.Destroy()
		stop := context.AfterFunc(ctx, func() { _ = ro.Terminate() })
		defer stop()
	}
	outs := make([]ortgo.Value, len(s.outputs))
	err = s.sess.RunWithOptions([]ortgo.Value{in}, outs, ro)
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("ort: run: %w", ctx.Err())
		}
		return nil, fmt.Errorf("ort: run: %w", err)
	}
	res := make([]Tensor, len(outs))
	for i, v := range outs {
		t, ok := v.(*ortgo.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("ort: output %q is not a float32 tensor", s.outputs[i].Name)
		}
		// GetData is a Go-managed copy of ORT's buffer: it stays valid after Destroy.
		res[i] = Tensor{Name: s.outputs[i].Name, Shape: []int64(t.GetShape()), Data: t.GetData()}
	}
	return res, nil
}

// Close releases the session; idempotent.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	if err != nil {
		return fmt.Errorf("ort: closing session: %w", err)
	}
	return nil
}
