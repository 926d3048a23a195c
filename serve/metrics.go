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
// Names follow Prometheus' conventions (base units, _total on counters);
// per-model series carry "model" and "version" labels, and the series of a
// version are removed when it is unloaded.
type metrics struct {
	http      calls                    // by route
	grpc      calls                    // by method
	queue     *prometheus.HistogramVec // model, version
	batch     *prometheus.HistogramVec // model, version
	inference *prometheus.HistogramVec // model, version
	dropped   *prometheus.CounterVec   // model, version
	failed    *prometheus.CounterVec   // model, version
	loadTime  *prometheus.GaugeVec     // model, version
	loads     *prometheus.CounterVec   // model, result
}

// calls are the metrics of one front end, HTTP or gRPC: requests by name
// (route or method) and status code, latency by name, and the requests in
// flight.
type calls struct {
	total    *prometheus.CounterVec   // name, code
	latency  *prometheus.HistogramVec // name
	inFlight prometheus.Gauge
}

// newCalls names a front end's metrics prefix_requests_total,
// prefix_request_duration_seconds and prefix_requests_in_flight; one and
// many ("HTTP request", "HTTP requests") and by (the name label) make their
// help texts.
func newCalls(prefix, one, many, by string, buckets []float64) calls {
	return calls{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: prefix + "_requests_total", Help: many + " by " + by + " and status code.",
		}, []string{by, "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: prefix + "_request_duration_seconds", Help: one + " latency by " + by + ".", Buckets: buckets,
		}, []string{by}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: prefix + "_requests_in_flight", Help: many + " being served.",
		}),
	}
}

// observe counts one finished call.
func (c calls) observe(name, code string, d time.Duration) {
	c.total.WithLabelValues(name, code).Inc()
	c.latency.WithLabelValues(name).Observe(d.Seconds())
}

var versionLabels = []string{"model", "version"}

func newMetrics(reg *prometheus.Registry, version, commit string, queued func() []*Classifier, bodies *bodyBudget) *metrics {
	latencyBuckets := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &metrics{
		http: newCalls("bitrun_http", "HTTP request", "HTTP requests", "route", latencyBuckets),
		grpc: newCalls("bitrun_grpc", "gRPC call", "gRPC calls", "method", latencyBuckets),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "bitrun_queue_duration_seconds", Help: "Time an image waited for its batch to run (in the queue and while the batch formed).", Buckets: latencyBuckets,
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
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "bitrun_build_info", Help: "Build information; always 1.",
	}, []string{"version", "commit", "goversion"})
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	build.WithLabelValues(version, commit, goVersion).Set(1)
	reg.MustRegister(m.http.total, m.http.latency, m.http.inFlight, m.queue, m.batch, m.inference,
		m.dropped, m.failed, m.loadTime, m.loads, m.grpc.total, m.grpc.latency, m.grpc.inFlight, build, queueCollector{queued},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bitrun_request_body_bytes",
			Help: "Request body bytes held in memory with their parsing copies and gRPC receive reservations, charged to max-body-memory.",
		}, func() float64 { return float64(bodies.used.Load()) }),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

var queueDesc = prometheus.NewDesc("bitrun_queue_images", "Images waiting for their batch to run (queued, or in a batch still forming).", versionLabels, nil)

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
	m.http.observe(route, strconv.Itoa(code), d)
}
