// Package deploy holds bitrun's Kubernetes and KServe manifests and their
// tests; it has no code of its own. It is a module of its own so that the
// Kubernetes API types its tests decode the manifests into stay out of
// bitrun's module graph.
//
//   - kserve/: a ServingRuntime (ONNX models, protocols v2 and grpc-v2,
//     port 8080, Prometheus scraping) and an InferenceService using it.
//   - kubernetes/: a plain Deployment, Service and HorizontalPodAutoscaler,
//     probed on /v2/health/live and /v2/health/ready.
//
// TestManifests decodes every manifest strictly into the API types
// (k8s.io/api; a hand-written schema of the KServe fields used, since
// KServe's Go module is not served by the module proxy here), so an unknown
// or misspelled field fails. TestImage runs the container image that `make
// image` builds with podman, with the ServingRuntime's arguments.
package deploy
