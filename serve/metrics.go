package serve

import (
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc/codes"
)

// metrics are the server's Prometheus collectors, registered on its own
// registry (never the global one, so several servers can live in a process).
// Names follow Prometheus' conventions (base units, _total on counters);
// per-model series carry "model" and "version" labels, and the series of a
// version are removed when it is unloaded.
type metrics struct {
	requests  *prometheus.CounterVec   // route, code
	latency   *prometheus.HistogramVec // route
	inFlight  prometheus.Gauge
	queue     *prometheus.HistogramVec // model, version
	batch     *prometheus.HistogramVec // model, version
	inference *prometheus.HistogramVec // model, version
	dropped   *prometheus.CounterVec   // model, version
	failed    *prometheus.CounterVec   // model, version
	loadTime  *prometheus.GaugeVec     // model, version
	loads     *prometheus.CounterVec   // model, result

	grpcRequests *prometheus.CounterVec   // method, code
	grpcLatency  *prometheus.HistogramVec // method
	grpcInFlight prometheus.Gauge
}

var versionLabels = []string{"model", "version"}

func newMetrics(reg *prometheus.Registry, version, commit string, queued func() []*Classifier) *metrics {
	latencyBuckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bitrun_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bitrun_http_request_duration_seconds", Help: "HTTP request latency by route.", Buckets: latencyBuckets,
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bitrun_http_requests_in_flight", Help: "HTTP requests being served.",
		}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bitrun_queue_duration_seconds", Help: "Time an image waited in the batching queue.", Buckets: latencyBuckets,
		}, versionLabels),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bitrun_batch_size", Help: "Images per batch sent to the model.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}, versionLabels),
		inference: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bitrun_inference_duration_seconds", Help: "Model run time per batch.", Buckets: latencyBuckets,
		}, versionLabels),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bitrun_dropped_images_total", Help: "Queued images dropped because their request was cancelled or timed out.",
		}, versionLabels),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bitrun_batch_errors_total", Help: "Batches the model failed to run.",
		}, versionLabels),
		loadTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bitrun_model_load_duration_seconds", Help: "Time to load and warm the model version.",
		}, versionLabels),
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bitrun_model_loads_total", Help: "Model repository loads by result (ok, error); a failed load leaves the served versions as they were.",
		}, []string{"model", "result"}),
		grpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bitrun_grpc_requests_total", Help: "gRPC calls by method and status code.",
		}, []string{"method", "code"}),
		grpcLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bitrun_grpc_request_duration_seconds", Help: "gRPC call latency by method.", Buckets: latencyBuckets,
		}, []string{"method"}),
		grpcInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bitrun_grpc_requests_in_flight", Help: "gRPC calls being served.",
		}),
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bitrun_build_info", Help: "Build information; always 1.",
	}, []string{"version", "commit", "goversion"})
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	build.WithLabelValues(version, commit, goVersion).Set(1)
	reg.MustRegister(m.requests, m.latency, m.inFlight, m.queue, m.batch, m.inference,
		m.dropped, m.failed, m.loadTime, m.loads, m.grpcRequests, m.grpcLatency, m.grpcInFlight, build, queueCollector{queued},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var queueDesc = prometheus.NewDesc("bitrun_queue_images", "Images waiting in the batching queue.", versionLabels, nil)

// queueCollector reports the queue length of every served model version
// at scrape time.
type queueCollector struct{ models func() []*Classifier }

func (q queueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- queueDesc }

func (q queueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, c := range q.models() {
		ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(c.b.queued()), c.name, c.version)
	}
}

// modelMetrics are the series of one model version.
type modelMetrics struct {
	queue     prometheus.Observer
	batch     prometheus.Observer
	inference prometheus.Observer
	dropped   prometheus.Counter
	failed    prometheus.Counter
}

func (m *metrics) forModel(name, version string) *modelMetrics {
	return &modelMetrics{
		queue:     m.queue.WithLabelValues(name, version),
		batch:     m.batch.WithLabelValues(name, version),
		inference: m.inference.WithLabelValues(name, version),
		dropped:   m.dropped.WithLabelValues(name, version),
		failed:    m.failed.WithLabelValues(name, version),
	}
}

// forget removes the series of a version no longer served.
func (m *metrics) forget(name, version string) {
	for _, v := range []interface{ DeleteLabelValues(...string) bool }{m.queue, m.batch, m.inference, m.dropped, m.failed, m.loadTime} {
		v.DeleteLabelValues(name, version)
	}
}

func (m *modelMetrics) observeQueue(wait time.Duration) { m.queue.Observe(wait.Seconds()) }

func (m *modelMetrics) observeBatch(size int, run time.Duration, err error) {
	if err != nil {
		m.failed.Inc()
		return
	}
	m.batch.Observe(float64(size))
	m.inference.Observe(run.Seconds())
}

func (m *modelMetrics) observeDropped() { m.dropped.Inc() }

func (m *metrics) request(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) grpcRequest(method string, code codes.Code, d time.Duration) {
	m.grpcRequests.WithLabelValues(method, code.String()).Inc()
	m.grpcLatency.WithLabelValues(method).Observe(d.Seconds())
}
