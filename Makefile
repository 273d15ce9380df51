# pulpdist — two commands matter: `make run` and `make test`.
SHELL := /bin/bash
GO ?= go
GOLANGCI_LINT_VERSION := v2.15.0
BIN := $(CURDIR)/bin
GOLANGCI_LINT := $(BIN)/golangci-lint
# Every module of the workspace (go.work), as directories.
MODULES := $(shell $(GO) list -m -f '{{.Dir}}')
GOTEST_FLAGS ?= -race -count=1 -shuffle=on -timeout=15m

.PHONY: run test deps bench-compare vet fmt-check lint gotest fuzz bench tidy build work-check tools clean

## run: the whole system in one process (embedded NATS, SQLite, all services, demo)
run:
	@$(GO) build -o $(BIN)/pulpdist ./cmd/pulpdist
	@exec $(BIN)/pulpdist dev

## test: vet, gofmt, golangci-lint, go test -race across every module, and each fuzzer briefly
test: deps fmt-check vet lint gotest fuzz

## deps: what the tests run besides Go: the system rsync (tree sources, the
## comparison harness), from Debian's packages when it is missing
deps:
	@command -v rsync >/dev/null || { echo "installing rsync"; SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq rsync; }

vet:
	$(GO) vet work

fmt-check:
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

$(GOLANGCI_LINT):
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

tools: $(GOLANGCI_LINT)

lint: $(GOLANGCI_LINT)
	@set -e; for m in $(MODULES); do echo "lint $${m#$(CURDIR)/}"; (cd $$m && $(GOLANGCI_LINT) run ./...); done

gotest:
	$(GO) test $(GOTEST_FLAGS) work

## fuzz: every Go fuzz target for FUZZTIME executions (default 3000x); seeds are in the tests.
## A count, not a duration: Go 1.26's fuzz coordinator can fail a target with
## "context deadline exceeded" when a duration ends on a loaded machine (go.dev/issue/75804).
FUZZTIME ?= 3000x
fuzz:
	@set -e; for m in $(MODULES); do \
	  for pkg in $$(cd $$m && $(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.Dir}}{{end}}' ./...); do \
	    for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pkg/*_test.go | sed 's/func //'); do \
	      echo "fuzz $${pkg#$(CURDIR)/} $$f"; (cd $$pkg && $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) .) || exit 1; \
	    done; \
	  done; \
	done

## bench: Go benchmarks across every module, then the tree-engine comparison with
## zstd, rsync and cp once (docs/benchmarks.md; PULPDIST_BENCH_SCALE=full for the
## documented numbers, PULPDIST_BENCH_OUT=FILE for its markdown table)
BENCH_TIMEOUT ?= 8h
bench:
	$(GO) test -run='^$$' -bench=. -benchmem -skip='^BenchmarkTreeEngine$$' work
	$(GO) test -run='^$$' -bench='^BenchmarkTreeEngine$$' -benchtime=1x -timeout=$(BENCH_TIMEOUT) ./cmd/pulpdist/internal/bench

## bench-compare: pulpdist against an rsync daemon on the same update of the same
## trees, N = 1, 4, 16, 64 sites (docs/benchmarks.md); BENCH_QUICK=1: tiny corpus,
## N = 1 and 16, under 3 minutes. Writes BENCH_JSON (docs/bench/latest.json).
bench-compare: deps
	$(GO) run ./cmd/pulpdist/internal/benchcompare

build:
	$(GO) build -o $(BIN)/ ./cmd/pulpdist ./services/inventory/cmd/inventory ./services/scheduler/cmd/scheduler ./services/deltacache/cmd/deltacache ./services/siteagent/cmd/siteagent

## tidy: go mod tidy in every module, then sync the workspace
tidy:
	@set -e; for m in $(MODULES); do (cd $$m && $(GO) mod tidy); done; $(GO) work sync

## work-check: every module builds and vets on its own, without the workspace
work-check:
	@set -e; for m in $(MODULES); do echo "standalone $${m#$(CURDIR)/}"; (cd $$m && GOWORK=off $(GO) build ./... && GOWORK=off $(GO) vet ./...); done

clean:
	rm -rf $(BIN) .data
