# botrelay — the same targets run locally and in CI.
GO        ?= go
PKGS      ?= ./...
TESTFLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build test test-short test-race lint vet fmt bench demo clean

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

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## bench: limiter decisions/s against the real Redis, delivery throughput.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./pkg/limiter/ ./pkg/envelope/ ./pkg/worker/

## demo: embedded NATS + robot simulator + worker + producer, no installs.
demo:
	$(GO) run ./cmd/demo

clean:
	$(GO) clean -testcache
