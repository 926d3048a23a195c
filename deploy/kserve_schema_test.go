package deploy

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The KServe custom resources, as a strict schema of the fields these
// manifests may use: each type copies the JSON names of KServe's own Go
// types (github.com/kserve/kserve pkg/apis/serving, v0.14), which the
// module proxy does not serve here. A field missing from them fails
// TestManifests; add it here, with KServe's spelling, before using it.

// ServingRuntime is serving.kserve.io/v1alpha1 ServingRuntime.
type ServingRuntime struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ServingRuntimeSpec `json:"spec"`
}

// ServingRuntimeSpec is KServe's ServingRuntimeSpec with its inlined
// ServingRuntimePodSpec.
type ServingRuntimeSpec struct {
	SupportedModelFormats []SupportedModelFormat `json:"supportedModelFormats,omitempty"`
	MultiModel            *bool                  `json:"multiModel,omitempty"`
	Disabled              *bool                  `json:"disabled,omitempty"`
	ProtocolVersions      []string               `json:"protocolVersions,omitempty"`
	Replicas              *uint16                `json:"replicas,omitempty"`

	// ServingRuntimePodSpec.
	Containers       []corev1.Container            `json:"containers"`
	Volumes          []corev1.Volume               `json:"volumes,omitempty"`
	NodeSelector     map[string]string             `json:"nodeSelector,omitempty"`
	Affinity         *corev1.Affinity              `json:"affinity,omitempty"`
	Tolerations      []corev1.Toleration           `json:"tolerations,omitempty"`
	Labels           map[string]string             `json:"labels,omitempty"`
	Annotations      map[string]string             `json:"annotations,omitempty"`
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	SecurityContext  *corev1.PodSecurityContext    `json:"securityContext,omitempty"`
}

// SupportedModelFormat is one model format a ServingRuntime serves.
type SupportedModelFormat struct {
	Name       string  `json:"name"`
	Version    *string `json:"version,omitempty"`
	AutoSelect *bool   `json:"autoSelect,omitempty"`
	Priority   *int32  `json:"priority,omitempty"`
}

// InferenceService is serving.kserve.io/v1beta1 InferenceService.
type InferenceService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              InferenceServiceSpec `json:"spec"`
}

// InferenceServiceSpec holds the predictor (no transformer or explainer).
type InferenceServiceSpec struct {
	Predictor PredictorSpec `json:"predictor"`
}

// PredictorSpec is KServe's PredictorSpec: the model, and the inlined
// ComponentExtensionSpec fields used for scaling.
type PredictorSpec struct {
	Model                *ModelSpec `json:"model,omitempty"`
	MinReplicas          *int32     `json:"minReplicas,omitempty"`
	MaxReplicas          int32      `json:"maxReplicas,omitempty"`
	ScaleTarget          *int32     `json:"scaleTarget,omitempty"`
	ScaleMetric          *string    `json:"scaleMetric,omitempty"`
	ContainerConcurrency *int64     `json:"containerConcurrency,omitempty"`
	TimeoutSeconds       *int64     `json:"timeout,omitempty"`
	ServiceAccountName   string     `json:"serviceAccountName,omitempty"`
}

// ModelSpec is KServe's ModelSpec: the format, the runtime, the storage
// and the inlined container fields (resources, env, ...).
type ModelSpec struct {
	ModelFormat     ModelFormat `json:"modelFormat"`
	Runtime         *string     `json:"runtime,omitempty"`
	StorageURI      *string     `json:"storageUri,omitempty"`
	RuntimeVersion  *string     `json:"runtimeVersion,omitempty"`
	ProtocolVersion *string     `json:"protocolVersion,omitempty"`

	Args      []string                    `json:"args,omitempty"`
	Env       []corev1.EnvVar             `json:"env,omitempty"`
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
}

// ModelFormat names a model's format.
type ModelFormat struct {
	Name    string  `json:"name"`
	Version *string `json:"version,omitempty"`
}
