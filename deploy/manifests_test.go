package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// kinds maps apiVersion and kind to a new object of the real API type (or
// KServe's strict schema) that manifests of that kind decode into.
var kinds = map[string]func() any{
	"v1/Service":                                 func() any { return new(corev1.Service) },
	"v1/ConfigMap":                               func() any { return new(corev1.ConfigMap) },
	"v1/PersistentVolumeClaim":                   func() any { return new(corev1.PersistentVolumeClaim) },
	"apps/v1/Deployment":                         func() any { return new(appsv1.Deployment) },
	"autoscaling/v2/HorizontalPodAutoscaler":     func() any { return new(autoscalingv2.HorizontalPodAutoscaler) },
	"batch/v1/Job":                               func() any { return new(batchv1.Job) },
	"serving.kserve.io/v1alpha1/ServingRuntime":  func() any { return new(ServingRuntime) },
	"serving.kserve.io/v1beta1/InferenceService": func() any { return new(InferenceService) },
}

// manifest is one YAML document of a file under deploy/.
type manifest struct {
	file string // relative to deploy/
	doc  []byte
	obj  any
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decode reads one manifest strictly: its kind must be known, and every
// field must exist in the type, spelled exactly.
func decode(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown apiVersion/kind %s/%s: add its API type to kinds", tm.APIVersion, tm.Kind)
	}
	// As the API server reads a request: duplicate keys are errors, and
	// field names match exactly (encoding/json alone would take
	// "targetport" for targetPort) and must exist.
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, err
	}
	obj := newObj()
	strict, err := kjson.UnmarshalStrict(js, obj)
	if err != nil {
		return nil, err
	}
	return obj, errors.Join(strict...)
}

// readManifests decodes every YAML document under deploy/.
func readManifests(t *testing.T) []manifest {
	t.Helper()
	var ms []manifest
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, doc := range docSep.Split(string(b), -1) {
			if len(bytes.TrimSpace(stripComments([]byte(doc)))) == 0 {
				continue
			}
			obj, err := decode([]byte(doc))
			if err != nil {
				t.Errorf("%s document %d: %v", path, i+1, err)
				continue
			}
			ms = append(ms, manifest{file: path, doc: []byte(doc), obj: obj})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

func stripComments(b []byte) []byte {
	return regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAll(b, nil)
}

// one returns the single manifest of type T, failing when there is not exactly one.
func one[T any](t *testing.T, ms []manifest) *T {
	t.Helper()
	var found []*T
	for _, m := range ms {
		if o, ok := m.obj.(*T); ok {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d manifests of type %T, want 1", len(found), new(T))
	}
	return found[0]
}

// flagValue returns the value of --name=V or --name V in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
		if a == name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestManifests decodes every manifest under deploy/ strictly and checks
// what ties them to bitrun serve: flags, ports, probes, names, grace.
func TestManifests(t *testing.T) {
	ms := readManifests(t)
	if len(ms) < 5 {
		t.Fatalf("%d manifests decoded, want at least 5", len(ms))
	}

	t.Run("ServingRuntime", func(t *testing.T) {
		sr := one[ServingRuntime](t, ms)
		if !slices.ContainsFunc(sr.Spec.SupportedModelFormats, func(f SupportedModelFormat) bool { return f.Name == "onnx" }) {
			t.Errorf("supportedModelFormats %+v: no onnx", sr.Spec.SupportedModelFormats)
		}
		for _, p := range []string{"v2", "grpc-v2"} {
			if !slices.Contains(sr.Spec.ProtocolVersions, p) {
				t.Errorf("protocolVersions %v: no %s", sr.Spec.ProtocolVersions, p)
			}
		}
		if sr.Spec.Annotations["prometheus.kserve.io/port"] != "8080" || sr.Spec.Annotations["prometheus.kserve.io/path"] != "/metrics" {
			t.Errorf("Prometheus annotations %v", sr.Spec.Annotations)
		}
		if len(sr.Spec.Containers) != 1 {
			t.Fatalf("%d containers", len(sr.Spec.Containers))
		}
		c := sr.Spec.Containers[0]
		if c.Name != "kserve-container" {
			t.Errorf("container %q: KServe looks for kserve-container", c.Name)
		}
		checkServeContainer(t, c, "{{.Name}}")
	})

	t.Run("InferenceService", func(t *testing.T) {
		sr := one[ServingRuntime](t, ms)
		is := one[InferenceService](t, ms)
		m := is.Spec.Predictor.Model
		if m == nil || m.Runtime == nil || *m.Runtime != sr.Name || m.ModelFormat.Name != "onnx" || m.StorageURI == nil {
			t.Fatalf("predictor model %+v: want runtime %s, format onnx and a storageUri", m, sr.Name)
		}
		if m.ProtocolVersion != nil && !slices.Contains(sr.Spec.ProtocolVersions, *m.ProtocolVersion) {
			t.Errorf("protocolVersion %s not in the runtime's %v", *m.ProtocolVersion, sr.Spec.ProtocolVersions)
		}
	})

	t.Run("Deployment", func(t *testing.T) {
		d := one[appsv1.Deployment](t, ms)
		svc := one[corev1.Service](t, ms)
		hpa := one[autoscalingv2.HorizontalPodAutoscaler](t, ms)
		pod := d.Spec.Template
		sel, err := metav1.LabelSelectorAsMap(d.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range sel {
			if pod.Labels[k] != v {
				t.Errorf("selector %s=%s does not match the pod labels %v", k, v, pod.Labels)
			}
		}
		for k, v := range svc.Spec.Selector {
			if pod.Labels[k] != v {
				t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, pod.Labels)
			}
		}
		if len(pod.Spec.Containers) != 1 {
			t.Fatalf("%d containers", len(pod.Spec.Containers))
		}
		c := pod.Spec.Containers[0]
		checkServeContainer(t, c, "")
		for _, p := range svc.Spec.Ports {
			if port(t, c, p.TargetPort) != 8080 {
				t.Errorf("Service port %s targets %s, not the container's 8080", p.Name, p.TargetPort.String())
			}
		}
		// SIGTERM: readiness 503 for --drain-delay, then --grace for requests
		// in flight; the kubelet must not kill the pod before both are over.
		var total time.Duration
		for _, f := range []string{"--grace", "--drain-delay"} {
			v, ok := flagValue(c.Args, f)
			if !ok {
				t.Errorf("no %s in the args %v", f, c.Args)
				continue
			}
			d, err := time.ParseDuration(v)
			if err != nil {
				t.Fatalf("%s=%s: %v", f, v, err)
			}
			total += d
		}
		tgps := pod.Spec.TerminationGracePeriodSeconds
		if tgps == nil || time.Duration(*tgps)*time.Second < total+time.Second {
			t.Errorf("terminationGracePeriodSeconds %v: want more than --drain-delay + --grace = %v", tgps, total)
		}
		if r := hpa.Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != d.Name || r.APIVersion != "apps/v1" {
			t.Errorf("HPA scales %+v, not Deployment %s", r, d.Name)
		}
		if c.Resources.Requests.Cpu().IsZero() {
			t.Error("no CPU request: the HPA's utilization target needs one")
		}
	})
}

// checkServeContainer checks a container that runs `bitrun serve` on the
// model folder KServe mounts: its args, port 8080 and health probes.
func checkServeContainer(t *testing.T, c corev1.Container, name string) {
	t.Helper()
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Fatalf("args %v: want serve first (the image's entrypoint is bitrun)", c.Args)
	}
	if v, _ := flagValue(c.Args, "--model-dir"); v != "/mnt/models" {
		t.Errorf("args %v: want --model-dir=/mnt/models", c.Args)
	}
	if v, ok := flagValue(c.Args, "--name"); name != "" && v != name || !ok {
		t.Errorf("args %v: want --name=%s", c.Args, name)
	}
	if addr := envValue(c.Env, "BITRUN_SERVE_ADDR"); addr != "0.0.0.0:8080" {
		t.Errorf("BITRUN_SERVE_ADDR %q: want 0.0.0.0:8080", addr)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 8080 {
		t.Errorf("ports %+v: want 8080", c.Ports)
	}
	for probe, path := range map[*corev1.Probe]string{c.LivenessProbe: "/v2/health/live", c.ReadinessProbe: "/v2/health/ready"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != path || port(t, c, probe.HTTPGet.Port) != 8080 {
			t.Errorf("probe %+v: want GET %s on 8080", probe, path)
		}
	}
}

// port resolves a named or numbered container port.
func port(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	t.Errorf("container %s has no port named %q", c.Name, p.StrVal)
	return 0
}

// TestManifestsStrict: a misspelled or unknown field in any of the
// manifests fails decoding, for the Kubernetes types and KServe's schema alike.
func TestManifestsStrict(t *testing.T) {
	for _, tc := range []struct{ file, old, new string }{
		{"kserve/servingruntime.yaml", "protocolVersions:", "protocolVersion:"},
		{"kserve/servingruntime.yaml", "supportedModelFormats:", "supportedModelFormat:"},
		{"kserve/servingruntime.yaml", "autoSelect:", "autoselect:"},
		{"kserve/servingruntime.yaml", "containerPort:", "containerport:"},
		{"kserve/inferenceservice.yaml", "storageUri:", "storageURI:"},
		{"kserve/inferenceservice.yaml", "modelFormat:", "format:"},
		{"kserve/inferenceservice.yaml", "minReplicas:", "minReplica:"},
		{"kubernetes/deployment.yaml", "terminationGracePeriodSeconds:", "terminationGracePeriod:"},
		{"kubernetes/deployment.yaml", "readinessProbe:", "readynessProbe:"},
		{"kubernetes/deployment.yaml", "readOnlyRootFilesystem:", "readOnlyRootFileSystem:"},
		{"kubernetes/service.yaml", "targetPort:", "targetport:"},
		{"kubernetes/hpa.yaml", "averageUtilization:", "averageUtilisation:"},
	} {
		b, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(tc.old)) {
			t.Errorf("%s has no %q to misspell", tc.file, tc.old)
			continue
		}
		if _, err := decode(b); err != nil {
			t.Fatalf("%s as written: %v", tc.file, err)
		}
		bad := bytes.Replace(b, []byte(tc.old), []byte(tc.new), 1)
		if _, err := decode(bad); err == nil {
			t.Errorf("%s with %q for %q decoded without error", tc.file, tc.new, tc.old)
		}
	}
	// A field added at the top of a spec, and an unknown kind.
	for _, doc := range []string{
		"apiVersion: serving.kserve.io/v1alpha1\nkind: ServingRuntime\nmetadata: {name: x}\nspec:\n  containers: []\n  grpcPort: 9000\n",
		"apiVersion: serving.kserve.io/v1beta1\nkind: InferenceServce\nmetadata: {name: x}\n",
	} {
		if _, err := decode([]byte(doc)); err == nil {
			t.Errorf("decoded without error:\n%s", doc)
		}
	}
}
