# bitrun build, test and demo targets. `make test` and `make demo` install what
# they need (scripts/setup.sh) and work on a fresh Debian machine.
GO       ?= go
BIN      := bin/bitrun
ORT_LIB  := $(CURDIR)/third_party/onnxruntime/libonnxruntime.so
export BITRUN_ORT_LIB ?= $(ORT_LIB)
# Packages whose tests run under the race detector (concurrency lives there).
RACE_PKGS := ./nn/... ./model/... ./train/... ./runtime/... ./zoo/... ./serve/... ./quantize/... ./internal/turbojpeg/...
FUZZTIME  ?= 10s
# make setup installs these; their tests fail instead of skipping when missing.
REQUIRE   := BITRUN_REQUIRE_ORT=1 BITRUN_REQUIRE_OPENBLAS=1 BITRUN_REQUIRE_TURBOJPEG=1 BITRUN_REQUIRE_CHROMIUM=1 BITRUN_REQUIRE_PODMAN=1 BITRUN_REQUIRE_PYGRPC=1
# The container image make image builds (podman, no registry needed).
IMAGE     ?= localhost/bitrun:latest

# make install puts the binary in $(PREFIX)/bin and ONNX Runtime in
# $(PREFIX)/lib/bitrun, where the installed binary looks for it.
PREFIX    ?= $(HOME)/.local

.PHONY: setup build install image test test-long race fuzz bench demo clean proto

setup:
	@scripts/setup.sh

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/bitrun

install: setup build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/bitrun
	install -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/bitrun
	cp -P third_party/onnxruntime/libonnxruntime.so* $(DESTDIR)$(PREFIX)/lib/bitrun/
	@echo "installed $(PREFIX)/bin/bitrun and $(PREFIX)/lib/bitrun/libonnxruntime.so"

# The Containerfile's image, built here without pulling a base image: a root
# filesystem from Debian packages (scripts/image-rootfs.sh) under the
# Containerfile's final stage (scripts/image.sh).
image: setup build
	IMAGE=$(IMAGE) scripts/image.sh

# deploy/ is a module of its own (the Kubernetes API types stay out of
# bitrun's): its manifest tests and the image test (podman) run here too.
test: setup image
	$(GO) mod tidy -diff
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) build ./...
	$(REQUIRE) $(GO) test -short -count=1 ./...
	$(REQUIRE) $(GO) test -short -count=1 -race $(shell $(GO) list $(RACE_PKGS) 2>/dev/null)
	cd deploy && $(GO) mod tidy -diff && $(GO) vet ./... && \
		$(REQUIRE) BITRUN_IMAGE=$(IMAGE) BITRUN_BIN=$(CURDIR)/$(BIN) $(GO) test -short -count=1 ./...

# Long tests: full-size exports and real-data training checks.
test-long: setup
	$(REQUIRE) $(GO) test -count=1 -timeout 60m ./...

fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

bench: setup
	$(GO) test -run '^$$' -bench . -benchtime 3x -count 5 ./nn/ ./model/

# The offline transfer demo (README command 1): MNIST upstream -> Fashion-MNIST
# fine-tuning (head, full, 10-shot pretrained vs random init), ONNX eval and a
# results table, under demo/. Re-runnable; DEMO_CLEAN=1 starts over.
demo: setup build
	scripts/demo.sh

# Regenerates the KServe v2 gRPC code (api/inferencepb) from its .proto:
# protoc from apt (protobuf-compiler), the plugins from the Go module proxy.
PROTOC_GEN_GO      := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC := google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1
proto:
	@command -v protoc >/dev/null || { echo "proto: install protoc (apt-get install protobuf-compiler)" >&2; exit 1; }
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO_GRPC)
	PATH="$(CURDIR)/bin:$$PATH" protoc -I api/inferencepb \
		--go_out=api/inferencepb --go_opt=paths=source_relative \
		--go-grpc_out=api/inferencepb --go-grpc_opt=paths=source_relative \
		api/inferencepb/grpc_predict_v2.proto

clean:
	rm -rf bin
