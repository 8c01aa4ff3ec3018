# regent's build, test and release entry points. Bare "make" prints help.
# Each target has a "##" line; "make help" lists them.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
BIN      := $(CURDIR)/bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/regent-ha/regent/appliance.Version=$(VERSION)
# Pinned tool versions (served by the module proxy here); installed into ./bin.
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT         := $(BIN)/golangci-lint
# Extra flags for "go test", e.g. make test TESTFLAGS='-run TestX -v'.
TESTFLAGS ?=

.PHONY: help
help: ## print this help
	@echo "regent: make <target>"
	@echo
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  %-14s %s\n", $$1, $$2}'

## ---- build -----------------------------------------------------------------

.PHONY: build
build: ## build bin/regent with the version from git describe
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/regent ./cmd/regent

.PHONY: run
run: build ## start a local three-master cluster (regent dev)
	$(BIN)/regent dev

## ---- tests -----------------------------------------------------------------

.PHONY: test
test: ## unit, simulation and integration tests with the race detector (< 10 min on 2 cores)
	$(GO) test -race -tags invariants -timeout 20m $(TESTFLAGS) ./...

.PHONY: test-short
test-short: ## the quick tests only (-short, no race detector)
	$(GO) test -short $(TESTFLAGS) ./...

# sim: long randomised simulation runs of the replog/paxos simulator. The
# first seed is random unless SIM_FIRST is given; a failing seed reruns alone
# with: go test -tags invariants -run '^TestSim$$' ./replog/paxos -sim.seed=N
# TODO(replog): add the driver's chaos runs (TestNodeChaos) here if wanted.
SIM_SEEDS ?= 500
ifeq ($(origin SIM_FIRST),undefined)
SIM_FIRST := $(shell od -An -N3 -tu4 /dev/urandom | tr -d ' ')
endif
.PHONY: sim
sim: ## long simulation runs with random seeds (SIM_SEEDS, SIM_FIRST; each printed)
	@echo "make sim: SIM_FIRST=$(SIM_FIRST) SIM_SEEDS=$(SIM_SEEDS)"
	$(GO) test -tags invariants -count=1 -timeout 0 -run '^TestSim$$' ./replog/paxos \
		-sim.first=$(SIM_FIRST) -sim.seeds=$(SIM_SEEDS) $(TESTFLAGS)

# bench: benchmarks that report throughput, p50/p99 latency and bytes/s.
.PHONY: bench
bench: ## run the benchmarks
	$(GO) test -run '^$$' -bench . -benchmem $(TESTFLAGS) ./...

# e2e: end-to-end tests on the real binary (appliance/e2e_test.go).
# TODO(master): point this at the end-to-end tests once they exist.
.PHONY: e2e
e2e: ## end-to-end tests on real processes on loopback
	$(GO) test -race -tags invariants -run 'E2E' -count=1 $(TESTFLAGS) ./appliance/...

.PHONY: e2e-ops
e2e-ops: ## the Operational Guide's procedures on real processes (docs/operations.md)
	$(GO) test -race -tags invariants -run '^(TestOps|TestForwarder)' -count=1 -v $(TESTFLAGS) ./appliance/

# chaos: faults on real processes, histories checked for linearizability
# (docs/reliability.md). As root with nftables, masters run in network
# namespaces and partitions are injected too.
SEED        ?=
DURATION    ?= 60s
MASTERS     ?= 3
CHAOS_SEEDS ?= 5
CHAOS_NETNS := $(if $(filter 0,$(shell id -u)),$(if $(shell command -v nft),-chaos.netns))
CHAOSFLAGS  ?=

.PHONY: chaos
chaos: ## chaos runs on real processes: 5 seeds x 60 s (SEED=... DURATION=... reproduces one run)
	$(GO) test -count=1 -timeout 0 -run 'TestChaos$$' -v ./appliance \
		$(if $(SEED),-chaos.seed=$(SEED) -chaos.seeds=1,-chaos.seeds=$(CHAOS_SEEDS)) \
		-chaos.duration=$(DURATION) -chaos.masters=$(MASTERS) $(CHAOS_NETNS) $(CHAOSFLAGS)

.PHONY: chaos-long
chaos-long: ## nightly chaos: 5 masters, 24 seeds x 10 min (about 4 h)
	$(GO) test -count=1 -timeout 0 -run 'TestChaos$$' -v ./appliance \
		-chaos.seeds=24 -chaos.duration=10m -chaos.masters=5 $(CHAOS_NETNS) $(CHAOSFLAGS)

## ---- quality ---------------------------------------------------------------

.PHONY: lint
lint: $(GOLANGCI_LINT) ## gofmt, go vet and golangci-lint (staticcheck, unused, errcheck, ineffassign, misspell, revive); CI runs it
	@out="$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null)"; \
		if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags invariants ./...
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

# govulncheck needs the vulnerability database at vuln.go.dev, which CI cannot
# reach; run it where the network allows.
.PHONY: vuln
vuln: ## report known vulnerabilities in dependencies (needs vuln.go.dev)
	GOBIN=$(BIN) $(GO) install golang.org/x/vuln/cmd/govulncheck@v1.9.0
	$(BIN)/govulncheck ./...

## ---- packaging -------------------------------------------------------------

include packaging/package.mk

## ---- generated code --------------------------------------------------------

PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2

.PHONY: proto
proto: ## regenerate replog/peer/peerpb from peer.proto (needs protoc: apt-get install -y protobuf-compiler)
	@command -v protoc >/dev/null || { echo "make proto: protoc not found; apt-get install -y protobuf-compiler"; exit 2; }
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	protoc -I replog/peer/peerpb \
		--plugin=protoc-gen-go=$(BIN)/protoc-gen-go --go_out=paths=source_relative:replog/peer/peerpb \
		--plugin=protoc-gen-go-grpc=$(BIN)/protoc-gen-go-grpc --go-grpc_out=paths=source_relative:replog/peer/peerpb \
		replog/peer/peerpb/peer.proto

.PHONY: clean
clean: ## remove build outputs
	rm -rf $(BIN)/regent dist/
