# botrelay — the same targets run locally and in CI.
GO        ?= go
PKGS      ?= ./...
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build test test-short test-race lint vet fmt bench fuzz demo clean

all: build

build:
	$(GO) build $(PKGS)

## test: the whole suite against real servers (Redis at 127.0.0.1:6379; an
## embedded NATS JetStream, or BOTRELAY_TEST_NATS_URL).
test:
	$(GO) test $(TESTFLAGS) $(PKGS)

test-race: test

test-short:
	$(GO) test -short -count=1 $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## lint: go vet, gofmt, and the deployment files (YAML parses, the kinds
## botrelay ships have their required fields, the dashboard parses).
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run ./internal/tools/manifestlint deploy

## bench: limiter decisions/s and round trips against the real Redis;
## end-to-end delivery throughput; head-of-line latency. See docs/benchmarks.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3s ./pkg/limiter/
	$(GO) test -run '^$$' -bench DeliveryThroughput -benchtime 5000x ./pkg/worker/
	$(GO) test -run '^$$' -bench HeadOfLine -benchtime 100x ./pkg/worker/

## fuzz: the envelope decoder and splitter, 30s each (seeds run in make test).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./pkg/envelope/
	$(GO) test -run '^$$' -fuzz FuzzSplit -fuzztime 30s ./pkg/envelope/

## demo: embedded NATS + robot simulator + worker + producer, no installs.
demo:
	$(GO) run ./cmd/demo

clean:
	$(GO) clean -testcache
