package serve

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bitrun/bitrun/api"
)

// modelTable is the immutable set of served models, replaced as a whole by
// Add and Replace. Each model has one or more versions, oldest first; the
// routes without a version use the newest.
type modelTable struct {
	models map[string][]*Classifier
	names  []string // sorted
}

func (t *modelTable) list() []*Classifier {
	if t == nil {
		return nil
	}
	var out []*Classifier
	for _, name := range t.names {
		out = append(out, t.models[name]...)
	}
	return out
}

func (t *modelTable) clone() *modelTable {
	n := &modelTable{models: map[string][]*Classifier{}}
	if t != nil {
		for name, vs := range t.models {
			n.models[name] = slices.Clone(vs)
		}
	}
	return n
}

func (t *modelTable) sortNames() {
	t.names = t.names[:0]
	for name := range t.models {
		t.names = append(t.names, name)
	}
	slices.Sort(t.names)
}

// versions lists the versions of a model, oldest first.
func versions(cs []*Classifier) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.version
	}
	return out
}

// ValidVersion reports whether v may be used as a model version: a decimal
// integer from 1 to 10^18 without leading zeros (Triton's version folders).
func ValidVersion(v string) bool {
	if v == "" || len(v) > 18 || v[0] == '0' {
		return false
	}
	_, err := strconv.ParseUint(v, 10, 64)
	return err == nil
}

func compareVersions(a, b string) int {
	x, _ := strconv.ParseUint(a, 10, 64)
	y, _ := strconv.ParseUint(b, 10, 64)
	return cmp.Compare(x, y)
}

// find returns the named model at version v ("" for its newest).
func (t *modelTable) find(name, v string) (*Classifier, error) {
	vs, ok := t.models[name]
	if !ok || len(vs) == 0 {
		return nil, fmt.Errorf("%w: %q (serving: %s)", ErrModelNotFound, name, strings.Join(t.names, ", "))
	}
	if v == "" {
		return vs[len(vs)-1], nil
	}
	for _, c := range vs {
		if c.version == v {
			return c, nil
		}
	}
	if !ValidVersion(v) {
		return nil, fmt.Errorf("%w: version %q of model %q: versions are positive integers (serving: %s)", ErrVersionNotFound, v, name, strings.Join(versions(vs), ", "))
	}
	return nil, fmt.Errorf("%w: version %s of model %q (serving: %s)", ErrVersionNotFound, v, name, strings.Join(versions(vs), ", "))
}

// refs counts the requests using a classifier, so that a classifier
// leaving the table (a reload, an unload) is closed only once they are done.
type refs struct {
	mu      sync.RWMutex
	retired bool
	wg      sync.WaitGroup
}

// acquire takes a reference; false once the classifier is retired.
func (r *refs) acquire() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.retired {
		return false
	}
	r.wg.Add(1)
	return true
}

func (r *refs) release() { r.wg.Done() }

// retire refuses new references and waits for the held ones.
func (r *refs) retire() {
	r.mu.Lock()
	r.retired = true
	r.mu.Unlock()
	r.wg.Wait()
}

// lookup finds the request's {name} (and {version}) in the served models
// and records the name for the log line; it takes no reference.
func (s *Server) lookup(rc *reqCtx, name, version string) (*Classifier, error) {
	t := s.table.Load()
	if t == nil {
		return nil, s.notReady()
	}
	if ValidName(name) {
		rc.model = name
	}
	return t.find(name, version)
}

// lookupReady is lookup refusing, with ErrNotReady, a model that is not
// ready yet and every model while the server drains.
func (s *Server) lookupReady(rc *reqCtx, name, version string) (*Classifier, error) {
	c, err := s.lookup(rc, name, version)
	if err != nil {
		return nil, err
	}
	if s.draining.Load() || !c.Ready() {
		return nil, s.notReady()
	}
	return c, nil
}

// use looks the request's model up and takes a reference on it for the
// request's duration (release it). A model being replaced is looked up
// again in the table that replaced it, so a reload never fails a request.
func (s *Server) use(rc *reqCtx, name, version string) (*Classifier, func(), error) {
	for range 8 {
		c, err := s.lookupReady(rc, name, version)
		if err != nil {
			return nil, nil, err
		}
		if c.refs.acquire() {
			rc.version = c.version
			return c, c.refs.release, nil
		}
		// Retired after the table that replaced it was published: look again.
	}
	return nil, nil, fmt.Errorf("%w: model %q is being reloaded", ErrNotReady, name)
}

// Replace makes cs the served versions of the model name (all of cs must
// carry that name and distinct versions; none unloads the model). It
// returns once the versions that left the table (or were replaced by a new
// classifier of the same version) have finished their requests in flight
// and are closed: requests started before Replace finish on the old
// classifier, requests after it reach the new one, none fails.
func (s *Server) Replace(name string, cs ...*Classifier) error {
	s.addMu.Lock()
	if s.closed {
		s.addMu.Unlock()
		var errs []error
		for _, c := range cs {
			errs = append(errs, c.Close())
		}
		return errors.Join(append(errs, fmt.Errorf("%w: server closed", ErrNotReady))...)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if c == nil || c.name != name {
			s.addMu.Unlock()
			return fmt.Errorf("serve: Replace(%q) given a classifier of another model", name)
		}
		if seen[c.version] {
			s.addMu.Unlock()
			return fmt.Errorf("serve: Replace(%q): version %s given twice", name, c.version)
		}
		seen[c.version] = true
	}
	old := s.table.Load()
	t := old.clone()
	var leaving []*Classifier
	if old != nil {
		for _, c := range old.models[name] {
			if !slices.Contains(cs, c) {
				leaving = append(leaving, c)
			}
		}
	}
	if len(cs) == 0 {
		delete(t.models, name)
	} else {
		vs := slices.Clone(cs)
		slices.SortFunc(vs, func(a, b *Classifier) int { return compareVersions(a.version, b.version) })
		t.models[name] = vs
		for _, c := range vs {
			s.publish(c)
		}
	}
	t.sortNames()
	s.table.Store(t)
	s.addMu.Unlock()

	var errs []error
	for _, c := range leaving {
		c.refs.retire()
		errs = append(errs, c.Close())
		if !seen[c.version] {
			s.metrics.forget(name, c.version)
		}
	}
	return errors.Join(errs...)
}

// publish attaches the server's metrics to a classifier about to be served.
func (s *Server) publish(c *Classifier) {
	if c.metrics.Load() != nil {
		return
	}
	c.metrics.Store(s.metrics.forModel(c.name, c.version))
	s.metrics.loadTime.WithLabelValues(c.name, c.version).Set(c.loadTime.Seconds())
}

// stats counts what Triton's statistics extension reports for one model
// version; every field is updated atomically.
type stats struct {
	success, fail                     statDur
	queue, compIn, compInfer, compOut statDur
	inferences, executions            atomic.Uint64
	last                              atomic.Int64 // Unix ms
}

type statDur struct{ count, ns atomic.Uint64 }

func (d *statDur) add(t time.Duration) {
	d.count.Add(1)
	d.ns.Add(uint64(max(t, 0)))
}

func (d *statDur) get() api.StatDuration {
	return api.StatDuration{Count: d.count.Load(), Ns: d.ns.Load()}
}

// request records the outcome of one predict or infer request.
func (c *Classifier) request(d time.Duration, err error) {
	if err != nil {
		c.stats.fail.add(d)
		return
	}
	c.stats.success.add(d)
}

// Statistics returns the model version's statistics as GET .../stats
// reports them.
func (c *Classifier) Statistics() api.ModelStatistics {
	st := &c.stats
	return api.ModelStatistics{
		Name: c.name, Version: c.version, LastInference: st.last.Load(),
		InferenceCount: st.inferences.Load(), ExecutionCount: st.executions.Load(),
		InferenceStats: api.InferStatistics{
			Success: st.success.get(), Fail: st.fail.get(), Queue: st.queue.get(),
			ComputeInput: st.compIn.get(), ComputeInfer: st.compInfer.get(), ComputeOutput: st.compOut.get(),
		},
	}
}

// The Classifier is its batcher's observer: statistics always, Prometheus
// metrics once a server serves it.

func (c *Classifier) observeQueue(wait time.Duration) {
	c.stats.queue.add(wait)
	if m := c.metrics.Load(); m != nil {
		m.observeQueue(wait)
	}
}

func (c *Classifier) observeBatch(size int, t batchTimes, err error) {
	if err == nil {
		c.stats.compIn.add(t.input)
		c.stats.compInfer.add(t.run)
		c.stats.compOut.add(t.output)
		c.stats.inferences.Add(uint64(size))
		c.stats.executions.Add(1)
		c.stats.last.Store(time.Now().UnixMilli())
	}
	if m := c.metrics.Load(); m != nil {
		m.observeBatch(size, t.run, err)
	}
}

func (c *Classifier) observeDropped() {
	if m := c.metrics.Load(); m != nil {
		m.observeDropped()
	}
}
