package serve

import (
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus collectors, registered on its own
// registry (never the global one, so several servers can live in a process).
type metrics struct {
	requests  *prometheus.CounterVec   // route, code
	latency   *prometheus.HistogramVec // route
	inFlight  prometheus.Gauge
	queue     *prometheus.HistogramVec // model
	batch     *prometheus.HistogramVec // model
	inference *prometheus.HistogramVec // model
	dropped   *prometheus.CounterVec   // model
	failed    *prometheus.CounterVec   // model
	loadTime  *prometheus.GaugeVec     // model
}

func newMetrics(reg *prometheus.Registry, version, commit string) *metrics {
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
			Name: "bitrun_queue_seconds", Help: "Time an image waited in the batching queue.", Buckets: latencyBuckets,
		}, []string{"model"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bitrun_batch_size", Help: "Images per batch sent to the model.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}, []string{"model"}),
		inference: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bitrun_inference_seconds", Help: "Model run time per batch.", Buckets: latencyBuckets,
		}, []string{"model"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bitrun_dropped_total", Help: "Queued images dropped because their request was cancelled or timed out.",
		}, []string{"model"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bitrun_batch_errors_total", Help: "Batches the model failed to run.",
		}, []string{"model"}),
		loadTime: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bitrun_model_load_seconds", Help: "Time to load and warm the model.",
		}, []string{"model"}),
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
		m.dropped, m.failed, m.loadTime, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// modelMetrics is the batchObserver of one model.
type modelMetrics struct {
	queue     prometheus.Observer
	batch     prometheus.Observer
	inference prometheus.Observer
	dropped   prometheus.Counter
	failed    prometheus.Counter
}

func (m *metrics) forModel(name string) *modelMetrics {
	return &modelMetrics{
		queue:     m.queue.WithLabelValues(name),
		batch:     m.batch.WithLabelValues(name),
		inference: m.inference.WithLabelValues(name),
		dropped:   m.dropped.WithLabelValues(name),
		failed:    m.failed.WithLabelValues(name),
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
