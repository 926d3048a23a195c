package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bitrun/bitrun/api"
	"github.com/bitrun/bitrun/internal/regfile"
)

// Repository serves the models of a folder laid out as Triton's model
// repository:
//
//	DIR/<model>/config.json          optional, see ModelConfig
//	DIR/<model>/<version>/model.onnx one folder per version (positive integers)
//
// Load (re)loads a model: the versions its policy selects are opened and
// warmed first, then published at once (Server.Replace); requests in flight
// on versions that leave finish before those are closed. A model that fails
// to load keeps the versions it served, and the index reports why. Paths
// never leave DIR: model names are plain names (ValidName) and every folder
// and file is resolved through its symlinks and checked to lie inside DIR.
type Repository struct {
	root string // absolute, symlinks resolved
	srv  *Server
	opts RepositoryOptions

	mu sync.Mutex // serialises loads and unloads

	smu    sync.Mutex            // guards states and busy, held briefly (never across a load)
	states map[string]*repoState // what the repository knows of each model
	busy   map[string]string     // api.StateLoading or api.StateUnloading while a load or unload runs

	stop     chan struct{}
	done     chan struct{}
	closeOne sync.Once
}

// RepositoryOptions configures a Repository.
type RepositoryOptions struct {
	Options Options                                              // defaults of every model; its config.json overrides them
	Poll    time.Duration                                        // rescan interval picking up new, changed and removed models; 0 (the default) or negative: no polling
	Open    func(path string, opts Options) (*Classifier, error) // loads one version; nil: Open (ONNX Runtime)
	Logger  *slog.Logger                                         // nil: discard
}

// ModelConfig is the optional DIR/<model>/config.json. Zero (or absent)
// fields keep RepositoryOptions.Options; a non-zero one replaces the
// Options field it names, negative values meaning what they mean there.
type ModelConfig struct {
	MaxBatchSize  int            `json:"max_batch_size,omitempty"` // Options.MaxBatch
	BatchDelay    string         `json:"batch_delay,omitempty"`    // Options.BatchDelay as a Go duration, e.g. "5ms"; "" or "0s": keep; negative ("-1ms"): no wait
	MaxQueue      int            `json:"max_queue,omitempty"`      // Options.MaxQueue
	InstanceCount int            `json:"instance_count,omitempty"` // batches run concurrently (Options.Workers)
	TopK          int            `json:"top_k,omitempty"`          // Options.TopK
	Output        string         `json:"output,omitempty"`
	Labels        []string       `json:"labels,omitempty"`
	Mean          []float32      `json:"mean,omitempty"`
	Std           []float32      `json:"std,omitempty"`
	ModelFilename string         `json:"default_model_filename,omitempty"` // default model.onnx
	VersionPolicy *VersionPolicy `json:"version_policy,omitempty"`         // default: the latest version
}

// VersionPolicy picks the versions served, as Triton's: exactly one of
// Latest (the N highest), All, Specific.
type VersionPolicy struct {
	Latest *struct {
		NumVersions int `json:"num_versions"`
	} `json:"latest,omitempty"`
	All      *struct{} `json:"all,omitempty"`
	Specific *struct {
		Versions []int64 `json:"versions"`
	} `json:"specific,omitempty"`
}

// repoState is what the repository knows of one model.
type repoState struct {
	signature string // files seen by the last load attempt
	reason    string // why the model is unavailable, "" when it is served
	unloaded  bool   // unloaded through the API: polling leaves it alone
}

// modelConfigFile is the per-model configuration file name.
const modelConfigFile = "config.json"

// OpenRepository attaches the repository at dir to srv (the repository
// routes answer from then on), loads every model in it and, with
// RepositoryOptions.Poll, starts polling. Models that fail to load are left
// out, reported by the index and in the returned error; the others serve.
func OpenRepository(dir string, srv *Server, opts RepositoryOptions) (*Repository, error) {
	abs, err := filepath.Abs(dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return nil, fmt.Errorf("serve: model repository: %w", err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("serve: model repository %s is not a folder", dir)
	}
	if opts.Open == nil {
		opts.Open = Open
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Repository{root: abs, srv: srv, opts: opts, states: map[string]*repoState{}, stop: make(chan struct{}), done: make(chan struct{})}
	if !srv.repo.CompareAndSwap(nil, r) {
		return nil, errors.New("serve: the server already has a model repository")
	}
	err = r.loadAll(context.Background())
	if srv.table.Load() == nil {
		if aerr := srv.Add(); aerr != nil { // no model loaded: ready, with nothing to serve
			err = errors.Join(err, aerr)
		}
	}
	if opts.Poll > 0 {
		go r.poll(opts.Poll)
	} else {
		close(r.done)
	}
	return r, err
}

// Close stops polling. Idempotent; the served models stay with the server.
func (r *Repository) Close() error {
	r.closeOne.Do(func() { close(r.stop) })
	<-r.done
	return nil
}

func (r *Repository) poll(every time.Duration) {
	defer close(r.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			_ = r.loadAll(context.Background())
		}
	}
}

// loadAll loads the models whose files changed since their last load
// attempt and unloads the served ones whose folder is gone.
func (r *Repository) loadAll(ctx context.Context) error {
	names, err := r.folders()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		r.smu.Lock()
		var unloaded bool
		var seen string
		st := r.states[name]
		if st != nil {
			unloaded, seen = st.unloaded, st.signature
		}
		r.smu.Unlock()
		if unloaded {
			continue
		}
		if st != nil && r.signature(name) == seen {
			continue
		}
		if _, err := r.Load(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}
	if t := r.srv.table.Load(); t != nil {
		for _, name := range t.names {
			if !slices.Contains(names, name) {
				if _, err := r.unload(name, false); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	r.forgetGone(names)
	return errors.Join(errs...)
}

// forgetGone drops the state of every model whose folder is not among
// names and that is not served (a served one is unloaded first), so that
// the index does not list a removed folder whose load had failed.
func (r *Repository) forgetGone(names []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.srv.table.Load()
	r.smu.Lock()
	defer r.smu.Unlock()
	for name := range r.states {
		if !slices.Contains(names, name) && (t == nil || t.models[name] == nil) {
			delete(r.states, name)
		}
	}
}

// folders lists the model folders of the repository (valid names only).
// A symlinked folder is listed even when it leads outside the repository:
// its load then fails with that reason, and the index keeps reporting it
// as unavailable rather than forgetting it at the next poll.
func (r *Repository) folders() ([]string, error) {
	ents, err := os.ReadDir(r.root)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRepository, err)
	}
	var out []string
	for _, e := range ents {
		if !ValidName(e.Name()) {
			continue
		}
		if fi, err := os.Stat(filepath.Join(r.root, e.Name())); err == nil && fi.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// resolve joins rel to the root, resolves symlinks and checks that the
// result stays inside the repository.
func (r *Repository) resolve(rel ...string) (string, error) {
	p, err := filepath.EvalSymlinks(filepath.Join(append([]string{r.root}, rel...)...))
	if err != nil {
		return "", err
	}
	if p != r.root && !strings.HasPrefix(p, r.root+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: %s leads outside the repository (to %s)", ErrRepository, filepath.Join(rel...), p)
	}
	return p, nil
}

// versionFile is one version to serve and its model file.
type versionFile struct {
	version string
	path    string
	id      string // size and modification time: a changed file is reloaded
}

// checkName refuses a model name the repository cannot hold (before it
// touches a file, a state or a metric label).
func checkName(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: invalid model name %q (use 1-128 of A-Z a-z 0-9 . _ -, not starting with a dot)", ErrRepository, name)
	}
	return nil
}

// folder is the folder of the model name: an invalid name is ErrRepository,
// a missing folder ErrModelNotFound.
func (r *Repository) folder(name string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	dir, err := r.resolve(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: no folder %q in the model repository", ErrModelNotFound, name)
	}
	return dir, err
}

// scan reads a model's folder: its config and the versions its policy
// selects.
func (r *Repository) scan(name string) (ModelConfig, []versionFile, error) {
	var cfg ModelConfig
	dir, err := r.folder(name)
	if err != nil {
		return cfg, nil, err
	}
	if p, err := r.resolve(name, modelConfigFile); err == nil {
		b, err := regfile.ReadFile(p) // a FIFO named config.json must not block the load
		if err != nil {
			return cfg, nil, fmt.Errorf("%w: %s/%s: %w", ErrRepository, name, modelConfigFile, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			return cfg, nil, fmt.Errorf("%w: %s/%s: %w", ErrRepository, name, modelConfigFile, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return cfg, nil, err
	}
	file := cfg.ModelFilename
	if file == "" {
		file = "model.onnx"
	}
	if !ValidName(file) {
		return cfg, nil, fmt.Errorf("%w: %s/%s: default_model_filename %q is not a plain file name", ErrRepository, name, modelConfigFile, file)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: %w", ErrRepository, err)
	}
	var all []string
	for _, e := range ents {
		if ValidVersion(e.Name()) {
			all = append(all, e.Name())
		}
	}
	slices.SortFunc(all, compareVersions)
	if len(all) == 0 {
		return cfg, nil, fmt.Errorf("%w: model %q has no version folders (%s/<version>/%s)", ErrRepository, name, name, file)
	}
	selected, err := cfg.VersionPolicy.pick(all)
	if err != nil {
		return cfg, nil, fmt.Errorf("%w: model %q: %w", ErrRepository, name, err)
	}
	var out []versionFile
	for _, v := range selected {
		p, err := r.resolve(name, v, file)
		if errors.Is(err, fs.ErrNotExist) {
			return cfg, nil, fmt.Errorf("%w: version %s of model %q has no model file %s", ErrRepository, v, name, file)
		}
		if err != nil {
			return cfg, nil, err
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			return cfg, nil, fmt.Errorf("%w: %s/%s/%s is not a regular file", ErrRepository, name, v, file)
		}
		out = append(out, versionFile{version: v, path: p, id: p + ":" + fileID(fi)})
	}
	return cfg, out, nil
}

// pick applies the policy to the available versions (sorted, oldest
// first); nil is the latest version.
func (p *VersionPolicy) pick(all []string) ([]string, error) {
	switch {
	case p == nil:
		return all[len(all)-1:], nil
	case p.All != nil && p.Latest == nil && p.Specific == nil:
		return all, nil
	case p.Latest != nil && p.All == nil && p.Specific == nil:
		n := p.Latest.NumVersions
		if n < 1 {
			return nil, fmt.Errorf("version_policy latest num_versions %d; want at least 1", n)
		}
		return all[max(len(all)-n, 0):], nil
	case p.Specific != nil && p.All == nil && p.Latest == nil:
		var out []string
		for _, v := range p.Specific.Versions {
			s := fmt.Sprint(v)
			if !slices.Contains(all, s) {
				return nil, fmt.Errorf("version_policy specific names version %s; the folder has %s", s, strings.Join(all, ", "))
			}
			out = append(out, s)
		}
		if len(out) == 0 {
			return nil, errors.New("version_policy specific names no version")
		}
		return out, nil
	}
	return nil, errors.New("version_policy: give exactly one of latest, all, specific")
}

// signature identifies the files a load of the model would read.
func (r *Repository) signature(name string) string {
	_, vs, err := r.scan(name)
	return r.signatureOf(name, vs, err)
}

// signatureOf is the signature of what a scan of the model found (its
// versions, or its error).
func (r *Repository) signatureOf(name string, vs []versionFile, err error) string {
	var b strings.Builder
	if p, err := r.resolve(name, modelConfigFile); err == nil {
		if fi, err := os.Stat(p); err == nil {
			b.WriteString("config:" + fileID(fi) + ";")
		}
	}
	for _, v := range vs {
		b.WriteString(v.id + ";")
	}
	if err != nil {
		b.WriteString("error:" + err.Error())
	}
	return b.String()
}

// options are the classifier options of one version.
func (cfg ModelConfig) options(base Options, name, version string) (Options, error) {
	o := base
	o.Name, o.Version = name, version
	if cfg.MaxBatchSize != 0 {
		o.MaxBatch = cfg.MaxBatchSize
	}
	if cfg.BatchDelay != "" {
		d, err := time.ParseDuration(cfg.BatchDelay)
		if err != nil {
			return o, fmt.Errorf("%w: batch_delay %q: %w", ErrRepository, cfg.BatchDelay, err)
		}
		if d != 0 {
			o.BatchDelay = d
		}
	}
	if cfg.MaxQueue != 0 {
		o.MaxQueue = cfg.MaxQueue
	}
	if cfg.InstanceCount != 0 {
		o.Workers = cfg.InstanceCount
	}
	if cfg.TopK != 0 {
		o.TopK = cfg.TopK
	}
	if cfg.Output != "" {
		o.Output = cfg.Output
	}
	if cfg.Labels != nil {
		o.Labels = cfg.Labels
	}
	if cfg.Mean != nil {
		o.Mean = cfg.Mean
	}
	if cfg.Std != nil {
		o.Std = cfg.Std
	}
	return o, nil
}

// Load (re)loads the model name from the repository: the versions its
// policy selects that are new or whose file changed are opened and warmed,
// then the model's served versions become exactly the selected ones. On any
// failure nothing changes and the error (ErrRepository, or ErrModelNotFound
// for a missing folder) says why.
func (r *Repository) Load(ctx context.Context, name string) (api.RepositoryLoad, error) {
	// A name with no folder is refused before it gets a state or a metric
	// series: any client may ask for any name.
	if err := checkName(name); err != nil {
		return api.RepositoryLoad{Name: name, State: api.StateUnavailable}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// One scan: the signature recorded is of the files loaded.
	cfg, vs, scanErr := r.scan(name)
	if errors.Is(scanErr, ErrModelNotFound) {
		return api.RepositoryLoad{Name: name, State: api.StateUnavailable}, scanErr
	}
	sig := r.signatureOf(name, vs, scanErr)
	r.smu.Lock()
	st := r.states[name]
	if st == nil {
		st = &repoState{}
		r.states[name] = st
	}
	st.signature = sig
	r.setBusy(name, api.StateLoading)
	r.smu.Unlock()
	res, err := r.load(ctx, name, cfg, vs, scanErr)
	r.smu.Lock()
	defer r.smu.Unlock()
	delete(r.busy, name)
	if err != nil {
		st.reason = err.Error()
		r.srv.metrics.loads.WithLabelValues(name, "error").Inc()
		r.opts.Logger.Error("model load failed; the versions served before stay", "model", name, "error", err)
		return res, err
	}
	st.reason, st.unloaded = "", false
	r.srv.metrics.loads.WithLabelValues(name, "ok").Inc()
	r.opts.Logger.Info("model loaded from the repository", "model", name, "versions", res.Versions)
	return res, nil
}

// load serves the versions vs of a scan of the model (cfg its config;
// scanErr, when not nil, fails the load).
func (r *Repository) load(ctx context.Context, name string, cfg ModelConfig, vs []versionFile, scanErr error) (api.RepositoryLoad, error) {
	res := api.RepositoryLoad{Name: name, State: api.StateUnavailable}
	if scanErr != nil {
		return res, scanErr
	}
	current := map[string]*Classifier{}
	if t := r.srv.table.Load(); t != nil {
		for _, c := range t.models[name] {
			current[c.version] = c
		}
	}
	var next, opened []*Classifier
	fail := func(err error) (api.RepositoryLoad, error) {
		for _, c := range opened {
			err = errors.Join(err, c.Close())
		}
		return res, err
	}
	for _, v := range vs {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if c, ok := current[v.version]; ok && c.fileID == v.id {
			next = append(next, c)
			continue
		}
		o, err := cfg.options(r.opts.Options, name, v.version)
		if err != nil {
			return fail(err)
		}
		c, err := r.opts.Open(v.path, o)
		if err != nil {
			return fail(fmt.Errorf("%w: loading version %s of model %q: %w", ErrRepository, v.version, name, err))
		}
		c.fileID = v.id
		opened = append(opened, c)
		next = append(next, c)
	}
	if err := r.srv.Replace(name, next...); err != nil {
		return res, err
	}
	res.Versions, res.State = versions(next), api.StateReady
	slices.SortFunc(res.Versions, compareVersions)
	return res, nil
}

// Unload stops serving every version of the model name (requests in flight
// finish first); polling leaves it unloaded until Load.
func (r *Repository) Unload(name string) (api.RepositoryLoad, error) {
	if err := checkName(name); err != nil {
		return api.RepositoryLoad{Name: name, State: api.StateUnavailable}, err
	}
	return r.unload(name, true)
}

// unload is Unload; byAPI marks the model unloaded until the next Load
// (polling leaves it alone), else (its folder is gone) the repository
// forgets it, so that a folder put back is loaded again.
func (r *Repository) unload(name string, byAPI bool) (api.RepositoryLoad, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := api.RepositoryLoad{Name: name, Versions: []string{}, State: api.StateUnavailable}
	if t := r.srv.table.Load(); t == nil || t.models[name] == nil {
		return res, fmt.Errorf("%w: %q is not loaded", ErrModelNotFound, name)
	}
	r.smu.Lock()
	r.setBusy(name, api.StateUnloading)
	r.smu.Unlock()
	err := r.srv.Replace(name) // waits for the requests in flight
	r.smu.Lock()
	defer r.smu.Unlock()
	delete(r.busy, name)
	if err != nil {
		return res, err
	}
	if !byAPI {
		delete(r.states, name)
		r.opts.Logger.Info("model unloaded: its folder is gone", "model", name)
		return res, nil
	}
	st := r.states[name]
	if st == nil {
		st = &repoState{}
		r.states[name] = st
	}
	st.unloaded, st.reason = true, "unloaded"
	r.opts.Logger.Info("model unloaded", "model", name)
	return res, nil
}

// setBusy records that a load or unload of name runs (r.smu held).
func (r *Repository) setBusy(name, state string) {
	if r.busy == nil {
		r.busy = map[string]string{}
	}
	r.busy[name] = state
}

// Index lists the repository's models: one READY entry per served version,
// one UNAVAILABLE entry (with the reason) per model folder not served, and
// while a load runs a LOADING entry for the model (its served versions stay
// READY), while an unload runs its versions as UNLOADING. With readyOnly,
// only the READY entries. It answers at once, also during a long load.
func (r *Repository) Index(readyOnly bool) []api.RepositoryModel {
	names, _ := r.folders()
	r.smu.Lock()
	reasons := map[string]string{}
	for name, st := range r.states {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
		reasons[name] = st.reason
	}
	busy := maps.Clone(r.busy)
	r.smu.Unlock()
	return indexOf(r.srv.table.Load(), names, func(name string) string { return reasons[name] }, busy, readyOnly)
}

func indexOf(t *modelTable, names []string, reason func(string) string, busy map[string]string, readyOnly bool) []api.RepositoryModel {
	if t != nil {
		for _, name := range t.names {
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	out := []api.RepositoryModel{}
	for _, name := range names {
		var vs []*Classifier
		if t != nil {
			vs = t.models[name]
		}
		for _, c := range vs {
			state := api.StateReady
			switch {
			case busy[name] == api.StateUnloading:
				state = api.StateUnloading
			case !c.Ready():
				state = api.StateUnavailable
			}
			if !readyOnly || state == api.StateReady {
				// The reason of a served model is why its last load failed.
				out = append(out, api.RepositoryModel{Name: name, Version: c.version, State: state, Reason: reason(name)})
			}
		}
		if busy[name] == api.StateLoading && !readyOnly {
			out = append(out, api.RepositoryModel{Name: name, State: api.StateLoading})
			continue
		}
		if len(vs) == 0 && !readyOnly {
			why := reason(name)
			if why == "" {
				why = "not loaded"
			}
			out = append(out, api.RepositoryModel{Name: name, State: api.StateUnavailable, Reason: why})
		}
	}
	return out
}

func (s *Server) repository() (*Repository, error) {
	r := s.repo.Load()
	if r == nil {
		return nil, fmt.Errorf("%w: this server has no model repository (start it with --model-repository DIR)", ErrRepository)
	}
	return r, nil
}

// repositoryIndex answers GET or POST /v2/repository/index; {"ready": true}
// (or ?ready=true) lists only the ready versions. Without a repository it
// lists the served models.
func (s *Server) repositoryIndex(_ *reqCtx, w http.ResponseWriter, r *http.Request) error {
	var req api.RepositoryIndexRequest
	if r.Method == http.MethodPost {
		raw, release, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		defer release()
		if len(bytes.TrimSpace(raw)) > 0 {
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				return bodyError("repository index request JSON", err)
			}
		}
	}
	if q := r.URL.Query().Get("ready"); q != "" {
		b, err := strconv.ParseBool(q)
		if err != nil {
			return fmt.Errorf("%w: ready=%q; want true or false", ErrBadRequest, q)
		}
		req.Ready = b
	}
	if repo := s.repo.Load(); repo != nil {
		writeJSON(w, http.StatusOK, repo.Index(req.Ready))
		return nil
	}
	writeJSON(w, http.StatusOK, indexOf(s.table.Load(), nil, func(string) string { return "" }, nil, req.Ready))
	return nil
}

// repositoryLoad answers POST /v2/repository/models/{name}/load. A body
// may be empty or carry empty parameters: load-time overrides ("config",
// "file:..." in Triton) are refused rather than ignored, since the
// repository's own files are what is loaded.
func (s *Server) repositoryLoad(rc *reqCtx, w http.ResponseWriter, r *http.Request) error {
	repo, name, err := s.repositoryModel(rc, r)
	if err != nil {
		return err
	}
	raw, release, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	defer release()
	if len(bytes.TrimSpace(raw)) > 0 {
		var req struct {
			Parameters map[string]json.RawMessage `json:"parameters"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return bodyError("repository load request JSON", err)
		}
		if len(req.Parameters) > 0 {
			keys := slices.Sorted(maps.Keys(req.Parameters))
			return fmt.Errorf("%w: load parameters %s are not supported: the repository's own files are loaded; change %s/%s there and load again",
				ErrBadRequest, strings.Join(keys, ", "), name, modelConfigFile)
		}
	}
	res, err := repo.Load(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) repositoryUnload(rc *reqCtx, w http.ResponseWriter, r *http.Request) error {
	repo, name, err := s.repositoryModel(rc, r)
	if err != nil {
		return err
	}
	res, err := repo.Unload(name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// repositoryModel is the repository and the model name of a load or unload
// request; a name the repository cannot hold is refused before the body is
// read.
func (s *Server) repositoryModel(rc *reqCtx, r *http.Request) (*Repository, string, error) {
	repo, err := s.repository()
	if err != nil {
		return nil, "", err
	}
	name := r.PathValue("name")
	if err := checkName(name); err != nil {
		return nil, "", err
	}
	rc.model = name
	return repo, name, nil
}
