package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/stream"
)

// errStarting is what [Worker.Healthy] reports until the streams exist and
// the worker listens for work.
var errStarting = errors.New("starting: the streams are not ready yet")

// startupRetry bounds the pause between two tries to create the streams.
const startupRetry = 5 * time.Second

// untilStarted runs step (creating the streams, subscribing) until it
// succeeds, ctx ends, or it fails for a reason another try cannot mend.
// A NATS cluster electing a stream leader, or several workers creating the
// streams at once, answers late or not at all for a few seconds: that is
// retried, with the error logged, while Healthy reports the worker as
// starting.
func (w *Worker) untilStarted(ctx context.Context, what string, step func(context.Context) error) error {
	pause := 250 * time.Millisecond
	for {
		err := step(ctx)
		if err == nil || ctx.Err() != nil || !transientStartError(err) {
			return err
		}
		w.log.Warn("could not "+what+"; trying again", "err", err, "retry_in", pause)
		if !sleep(ctx, pause) {
			return ctx.Err()
		}
		pause = min(2*pause, startupRetry)
	}
}

// transientStartError reports an error of the kind a JetStream cluster
// gives while it elects a leader or is briefly away: timeouts, no
// responders, a lost connection, JetStream not (yet) available. An
// incompatible existing stream, or any answer the server gave about the
// request itself, is not transient.
func transientStartError(err error) bool {
	if errors.Is(err, stream.ErrIncompatible) {
		return false
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		// 10008: JetStream temporarily unavailable; 503: no leader (yet).
		return apiErr.ErrorCode == 10008 || apiErr.Code == 503
	}
	for _, e := range []error{context.DeadlineExceeded, nats.ErrTimeout, nats.ErrNoResponders,
		jetstream.ErrNoStreamResponse, nats.ErrDisconnected, nats.ErrConnectionReconnecting,
		jetstream.ErrJetStreamNotEnabled, nats.ErrJetStreamNotEnabled} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// startErr wraps a start-up failure for Run.
func startErr(err error) error { return fmt.Errorf("worker: %w", err) }
