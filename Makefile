# botrelay — the same targets run locally and in CI.
GO        ?= go
PKGS      ?= ./...
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build test test-short test-race lint vet fmt bench bench-scale fuzz demo clean

all: build

build:
	$(GO) build $(PKGS)

## test: the whole suite against real servers (Redis at 127.0.0.1:6379; an
## embedded NATS JetStream, or BOTRELAY_TEST_NATS_URL).
## The worker's suite runs twice: with direct lanes (the default) and with
## consumer lanes (`lanes: consumer`), which its rig switches on
## BOTRELAY_TEST_LANES.
test:
	$(GO) test $(TESTFLAGS) $(PKGS)
	BOTRELAY_TEST_LANES=consumer $(GO) test $(TESTFLAGS) ./pkg/worker/

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

## bench-scale: the fleet-scale figures (#7) as separate processes:
## nats-server built from go.mod, worker binaries, the simulator serving
## the workers' own config file, against the real Redis. Each figure is
## printed beside its target; see docs/benchmarks.md. Select scenarios and
## shorten the idle window with BENCHSCALE_FLAGS, e.g.
##   make bench-scale BENCHSCALE_FLAGS='-scenario idle,fanout -idle-window 20s'
BENCHSCALE_FLAGS ?=
bench-scale:
	$(GO) run ./cmd/benchscale $(BENCHSCALE_FLAGS)

## fuzz: every parser of outside input, 30s each (seeds run in make test):
## envelopes, dead-letter records, platform answers, signatures, the config,
## the gateway's requests (single, fan-out, batch; on an embedded NATS).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./pkg/envelope/
	$(GO) test -run '^$$' -fuzz '^FuzzSplit$$' -fuzztime $(FUZZTIME) ./pkg/envelope/
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./pkg/deadletter/
	$(GO) test -run '^$$' -fuzz '^FuzzClassify$$' -fuzztime $(FUZZTIME) ./pkg/delivery/
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyDingTalkCallback$$' -fuzztime $(FUZZTIME) ./pkg/signer/
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyPOPO$$' -fuzztime $(FUZZTIME) ./pkg/signer/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./pkg/config/
	$(GO) test -run '^$$' -fuzz '^FuzzPostMessage$$' -fuzztime $(FUZZTIME) ./pkg/gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzPostFanOut$$' -fuzztime $(FUZZTIME) ./pkg/gateway/
	$(GO) test -run '^$$' -fuzz '^FuzzPostBatch$$' -fuzztime $(FUZZTIME) ./pkg/gateway/

## demo: embedded NATS + robot simulator + worker + producer, no installs.
demo:
	$(GO) run ./cmd/demo

clean:
	$(GO) clean -testcache
