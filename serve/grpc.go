package serve

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"path"
	"sync"
	"time"

	"github.com/bitrun/bitrun/api"
	pb "github.com/bitrun/bitrun/api/inferencepb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/proto"
)

// The KServe v2 gRPC protocol (inference.GRPCInferenceService), served by
// ServeGRPC on its own listener. It shares everything with the HTTP routes:
// the models (and their versions, reloads and batching), Config's limits
// (MaxBody caps a message, MaxImages, MaxPixels, MaxInFlight, MaxDecodes,
// the body budget, RequestTimeout), the bearer token (metadata
// "authorization: Bearer <token>") and the metrics; errors become gRPC
// status codes in codeFor. ModelInfer takes the same inputs as the HTTP
// infer route (FP32 preprocessed or UINT8 pixels, as raw_input_contents or
// typed contents) and always answers with raw_output_contents, as Triton
// does: FP32 little-endian, or BYTES (4-byte length + string per element)
// for an output with the classification parameter.

// grpcPublic are the methods reachable without the bearer token, like the
// HTTP health probes.
var grpcPublic = map[string]bool{"ServerLive": true, "ServerReady": true}

// grpcExtensions are the v2 extensions the gRPC service implements.
var grpcExtensions = []string{api.ExtensionClassification}

// ServeGRPC serves the KServe v2 gRPC protocol on l until Shutdown (which
// lets calls in flight finish) or Close; it returns nil then.
func (s *Server) ServeGRPC(l net.Listener) error {
	gs := grpc.NewServer(
		grpc.MaxRecvMsgSize(int(min(s.cfg.MaxBody, math.MaxInt32))),
		grpc.ConnectionTimeout(s.cfg.ReadHeaderTimeout),
		grpc.InTapHandle(s.grpcReceive),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: s.cfg.IdleTimeout}),
		grpc.UnaryInterceptor(s.grpcUnary),
	)
	pb.RegisterGRPCInferenceServiceServer(gs, grpcService{s: s})
	if ok, err := install(s, &s.grpc, gs, "ServeGRPC", l); !ok {
		return err
	}
	if err := gs.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve: grpc: %w", err)
	}
	return nil
}

// stopGRPC stops the gRPC server: gracefully (calls in flight finish) until
// ctx ends, then at once. A nil ctx stops at once.
func (s *Server) stopGRPC(ctx context.Context) {
	s.mu.Lock()
	gs := s.grpc
	s.mu.Unlock()
	if gs == nil {
		return
	}
	if ctx == nil {
		gs.Stop()
		return
	}
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		gs.Stop()
		<-done
	}
}

// grpcReceive admits a new call before its message arrives. grpc-go
// buffers a message whole, at the size its 5-byte prefix declares (up to
// MaxBody), before any handler runs, so a client that declares a large
// message and stalls would hold that memory outside every budget. Each call
// therefore reserves MaxBody of the body budget (Config.MaxBodyMemory)
// until its message is in (grpcUnary releases it; the handler then charges
// what it parses) or the call ends, and is refused ResourceExhausted when
// the budget has no room; and a call must end within the body timeout
// (ReadTimeout when that is off) plus RequestTimeout, stalled or not. The
// health probes (grpcPublic) are admitted past a full budget through
// grpcProbeSlots slots of their own, so a busy server still answers them.
func (s *Server) grpcReceive(ctx context.Context, info *tap.Info) (context.Context, error) {
	var release func()
	if err := s.bodies.take(s.cfg.MaxBody); err == nil {
		release = func() { s.bodies.give(s.cfg.MaxBody) }
	} else if !grpcPublic[path.Base(info.FullMethodName)] {
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	} else {
		select {
		case s.probes <- struct{}{}:
			release = func() { <-s.probes }
		default:
			return nil, status.Error(codes.ResourceExhausted, err.Error())
		}
	}
	receive := s.cfg.BodyTimeout
	if receive <= 0 {
		receive = s.cfg.ReadTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, receive+s.cfg.RequestTimeout)
	var once sync.Once
	releaseOnce := func() { once.Do(release) }
	context.AfterFunc(ctx, func() { releaseOnce(); cancel() }) // the call ended or timed out
	return context.WithValue(ctx, grpcReservation{}, releaseOnce), nil
}

// grpcProbeSlots is how many gRPC health calls may be received at once
// past a full body budget: at most grpcProbeSlots × MaxBody bytes beyond
// Config.MaxBodyMemory.
const grpcProbeSlots = 4

// grpcReservation keys the release of a call's grpcReceive reservation.
type grpcReservation struct{}

// grpcUnary is the middleware of every gRPC call: authentication, the
// error's status code, metrics and one log line, as ServeHTTP does. The
// message is in by now, so the call's receive reservation is released.
func (s *Server) grpcUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	if release, ok := ctx.Value(grpcReservation{}).(func()); ok {
		release()
	}
	start := time.Now()
	method := path.Base(info.FullMethod)
	s.metrics.grpc.inFlight.Inc()
	defer s.metrics.grpc.inFlight.Dec()
	md, _ := metadata.FromIncomingContext(ctx)
	rc := &reqCtx{id: requestIDFrom(first(md, "x-request-id")), route: method}
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-request-id", rc.id))
	func() {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("serve: internal error: %v", p)
				s.cfg.Logger.Error("grpc handler panic", "id", rc.id, "panic", p)
			}
		}()
		if !grpcPublic[method] && s.cfg.AuthToken != "" {
			if err = s.authorizedHeader(first(md, "authorization")); err != nil {
				return
			}
		}
		resp, err = handler(context.WithValue(ctx, reqCtxKey{}, rc), req)
	}()
	code := codeFor(err)
	d := time.Since(start)
	s.metrics.grpc.observe(method, code.String(), d)
	attrs := []slog.Attr{
		slog.String("id", rc.id), slog.String("method", method), slog.String("code", code.String()),
		slog.Float64("ms", float64(d.Microseconds())/1000),
	}
	if p, ok := peer.FromContext(ctx); ok {
		attrs = append(attrs, slog.String("remote", p.Addr.String()))
	}
	s.logRequest(ctx, "grpc request", rc, attrs, err, code == codes.Internal || code == codes.Unknown)
	if err != nil {
		return nil, status.Error(code, err.Error())
	}
	return resp, nil
}

// first is the first value of a metadata key, or "".
func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// grpcService implements inference.GRPCInferenceService over the Server.
type grpcService struct {
	pb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

func grpcReq(ctx context.Context) *reqCtx {
	if rc, ok := ctx.Value(reqCtxKey{}).(*reqCtx); ok {
		return rc
	}
	return &reqCtx{}
}

func (g grpcService) ServerLive(context.Context, *pb.ServerLiveRequest) (*pb.ServerLiveResponse, error) {
	return &pb.ServerLiveResponse{Live: true}, nil
}

func (g grpcService) ServerReady(context.Context, *pb.ServerReadyRequest) (*pb.ServerReadyResponse, error) {
	return &pb.ServerReadyResponse{Ready: g.s.Ready()}, nil
}

func (g grpcService) ModelReady(ctx context.Context, req *pb.ModelReadyRequest) (*pb.ModelReadyResponse, error) {
	c, err := g.s.lookup(grpcReq(ctx), req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	return &pb.ModelReadyResponse{Ready: !g.s.draining.Load() && c.Ready()}, nil
}

func (g grpcService) ServerMetadata(context.Context, *pb.ServerMetadataRequest) (*pb.ServerMetadataResponse, error) {
	return &pb.ServerMetadataResponse{Name: "bitrun", Version: g.s.cfg.Version, Extensions: grpcExtensions}, nil
}

func (g grpcService) ModelMetadata(ctx context.Context, req *pb.ModelMetadataRequest) (*pb.ModelMetadataResponse, error) {
	c, err := g.s.lookup(grpcReq(ctx), req.GetName(), req.GetVersion())
	if err != nil {
		return nil, err
	}
	m := c.Metadata()
	resp := &pb.ModelMetadataResponse{Name: m.Name, Versions: m.Versions, Platform: m.Platform}
	if t := g.s.table.Load(); t != nil {
		resp.Versions = versions(t.models[c.name])
	}
	for _, in := range m.Inputs {
		resp.Inputs = append(resp.Inputs, &pb.ModelMetadataResponse_TensorMetadata{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape})
	}
	for _, o := range m.Outputs {
		resp.Outputs = append(resp.Outputs, &pb.ModelMetadataResponse_TensorMetadata{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape})
	}
	return resp, nil
}

// ModelInfer runs an inference as the HTTP infer route does: the same
// checks, limits, batching and statistics.
func (g grpcService) ModelInfer(ctx context.Context, req *pb.ModelInferRequest) (resp *pb.ModelInferResponse, err error) {
	s, rc := g.s, grpcReq(ctx)
	name, version := req.GetModelName(), req.GetModelVersion()
	if _, err := s.lookupReady(rc, name, version); err != nil {
		return nil, err
	}
	c, ctx, end, err := s.start(ctx, rc, name, version)
	if err != nil {
		return nil, err
	}
	defer func() { end(err) }()
	// The decoded message and the copy made from it are charged to the
	// body budget while the request is parsed, as an HTTP body is.
	charge := 2 * int64(proto.Size(req))
	if err := s.bodies.take(charge); err != nil {
		return nil, err
	}
	ir, err := inferRequestFromPB(req)
	var p *parsedInfer
	if err == nil {
		p, err = s.checkInfer(ctx, ir, c)
	}
	s.bodies.give(charge)
	if err != nil {
		return nil, err
	}
	for i := range p.outputs {
		p.outputs[i].binary = true // every output travels as raw_output_contents
	}
	outs, err := c.inferRows(ctx, p.input, p.rows)
	if err != nil {
		return nil, err
	}
	ar, err := c.inferResponse(p, outs)
	if err != nil {
		return nil, err
	}
	resp = &pb.ModelInferResponse{ModelName: ar.ModelName, ModelVersion: ar.ModelVersion, Id: ar.ID}
	for _, o := range ar.Outputs {
		resp.Outputs = append(resp.Outputs, &pb.ModelInferResponse_InferOutputTensor{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape})
		resp.RawOutputContents = append(resp.RawOutputContents, o.Raw)
	}
	return resp, nil
}

// inferRequestFromPB turns a gRPC infer request into the HTTP route's
// request, every input's data as Raw bytes: raw_input_contents as sent,
// fp32_contents (FP32) and uint_contents (UINT8) encoded as the binary
// extension would carry them.
func inferRequestFromPB(req *pb.ModelInferRequest) (*api.InferRequest, error) {
	raw := req.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(req.GetInputs()) {
		return nil, fmt.Errorf("%w: %d raw_input_contents for %d inputs; want one per input", ErrBadRequest, len(raw), len(req.GetInputs()))
	}
	params, err := parametersFromPB(req.GetParameters())
	if err != nil {
		return nil, err
	}
	out := &api.InferRequest{ID: req.GetId(), Parameters: params}
	for i, in := range req.GetInputs() {
		t := api.Tensor{Name: in.GetName(), Datatype: in.GetDatatype(), Shape: in.GetShape(), Raw: []byte{}}
		if t.Parameters, err = parametersFromPB(in.GetParameters()); err != nil {
			return nil, err
		}
		contents := in.GetContents()
		switch {
		case len(raw) > 0 && contents != nil:
			return nil, fmt.Errorf("%w: input %q has contents and raw_input_contents; send one", ErrBadRequest, t.Name)
		case len(raw) > 0:
			if raw[i] != nil {
				t.Raw = raw[i]
			}
		case t.Datatype == "FP32":
			v := contents.GetFp32Contents()
			t.Raw = make([]byte, 4*len(v))
			for j, f := range v {
				binary.LittleEndian.PutUint32(t.Raw[4*j:], math.Float32bits(f))
			}
		case t.Datatype == "UINT8":
			v := contents.GetUintContents()
			t.Raw = make([]byte, len(v))
			for j, u := range v {
				if u > 255 {
					return nil, fmt.Errorf("%w: input %q value %d is %d; UINT8 holds 0 to 255", ErrBadRequest, t.Name, j, u)
				}
				t.Raw[j] = byte(u)
			}
		}
		out.Inputs = append(out.Inputs, t)
	}
	for _, o := range req.GetOutputs() {
		ps, err := parametersFromPB(o.GetParameters())
		if err != nil {
			return nil, err
		}
		out.Outputs = append(out.Outputs, api.RequestedOutput{Name: o.GetName(), Parameters: ps})
	}
	return out, nil
}

// parametersFromPB turns gRPC parameters into api.Parameters values of the
// types their accessors read (bool, int64, string, float64).
func parametersFromPB(m map[string]*pb.InferParameter) (api.Parameters, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make(api.Parameters, len(m))
	for k, v := range m {
		switch x := v.GetParameterChoice().(type) {
		case *pb.InferParameter_BoolParam:
			out[k] = x.BoolParam
		case *pb.InferParameter_Int64Param:
			out[k] = x.Int64Param
		case *pb.InferParameter_StringParam:
			out[k] = x.StringParam
		case *pb.InferParameter_DoubleParam:
			out[k] = x.DoubleParam
		case *pb.InferParameter_Uint64Param:
			if x.Uint64Param > math.MaxInt64 {
				return nil, fmt.Errorf("%w: parameter %s=%d is out of range", api.ErrMalformed, k, x.Uint64Param)
			}
			out[k] = int64(x.Uint64Param)
		default:
			return nil, fmt.Errorf("%w: parameter %s has no value", api.ErrMalformed, k)
		}
	}
	return out, nil
}
