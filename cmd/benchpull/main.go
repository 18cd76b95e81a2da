// Command benchpull measures JetStream alone under the pull models a
// worker can use, to tell the server's share of a fleet's cost from the
// worker's (docs/design/fleet.md, "Pull models").
//
// It creates a work-queue stream on a nats-server (not one botrelay
// uses: stream BENCHPULL, subjects benchpull.out.*), publishes -per 1 KiB
// messages to each of -robots subjects, then consumes them all and prints
// messages/s, consumer creation included:
//
//	fetch        a consumer per robot (MaxAckPending 1, memory, created one
//	             at a time), a Fetch per message, acks confirmed
//	consume      the same, one long-lived pull per robot, acks confirmed
//	consumeack   the same, plain acks
//	shared       one consumer over every robot, 32 goroutines, acks
//	             confirmed (no per-robot order: the floor of any design)
//	direct       no consumer: a goroutine per robot gets the robot's first
//	             message by subject (the stream's message-get API), then
//	             deletes it (-allowdirect: the direct-get API instead)
//
// Usage:
//
//	benchpull -url nats://127.0.0.1:4222 -mode fetch -robots 500 -per 40
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchpull:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", nats.DefaultURL, "NATS server")
	mode := flag.String("mode", "fetch", "fetch, consume, consumeack or shared")
	robots := flag.Int("robots", 500, "robots (subjects)")
	per := flag.Int("per", 40, "messages per robot")
	allowDirect := flag.Bool("allowdirect", false, "direct mode: set AllowDirect on the stream (direct gets)")
	flag.Parse()
	ctx := context.Background()
	nc, err := nats.Connect(*url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	const name = "BENCHPULL"
	_ = js.DeleteStream(ctx, name)
	defer func() { _ = js.DeleteStream(context.Background(), name) }()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"benchpull.out.*"},
		Retention: jetstream.WorkQueuePolicy, MaxConsumers: 200000, AllowDirect: *allowDirect})
	if err != nil {
		return err
	}
	n := *robots * *per
	body := make([]byte, 1024)
	for i := range n {
		if _, err := js.PublishAsync(fmt.Sprintf("benchpull.out.r%05d", i%*robots), body); err != nil {
			return err
		}
	}
	<-js.PublishAsyncComplete()

	var done atomic.Int64
	errs := make(chan error, *robots+32)
	start := time.Now()
	var wg sync.WaitGroup
	switch *mode {
	case "fetch", "consume", "consumeack":
		creates := make(chan struct{}, 1)
		for r := range *robots {
			wg.Go(func() {
				if err := robotLane(ctx, st, creates, *mode, r, *per, &done); err != nil {
					errs <- err
				}
			})
		}
	case "direct":
		for r := range *robots {
			wg.Go(func() {
				if err := directLane(ctx, st, r, *per, &done); err != nil {
					errs <- err
				}
			})
		}
	case "shared":
		c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "shared",
			AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 2000, MemoryStorage: true})
		if err != nil {
			return err
		}
		it, err := c.Messages(jetstream.PullMaxMessages(500))
		if err != nil {
			return err
		}
		for range 32 {
			wg.Go(func() {
				for {
					m, err := it.Next()
					if err != nil {
						return // stopped
					}
					if err := m.DoubleAck(ctx); err != nil {
						errs <- err
						return
					}
					if done.Add(1) == int64(n) {
						it.Stop()
					}
				}
			})
		}
	default:
		return fmt.Errorf("unknown mode %q", *mode)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := errors.Join(collect(errs)...); err != nil {
		return err
	}
	fmt.Printf("%s robots=%d msgs=%d %.0f msg/s (%s)\n", *mode, *robots, n, float64(n)/elapsed.Seconds(), elapsed.Round(time.Millisecond))
	return nil
}

// robotLane consumes robot r's per messages through a consumer of its own.
func robotLane(ctx context.Context, st jetstream.Stream, creates chan struct{}, mode string, r, per int, done *atomic.Int64) error {
	creates <- struct{}{}
	c, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: fmt.Sprintf("r%05d", r),
		FilterSubject: fmt.Sprintf("benchpull.out.r%05d", r), AckPolicy: jetstream.AckExplicitPolicy,
		MaxAckPending: 1, MemoryStorage: true, InactiveThreshold: time.Minute, MaxDeliver: -1})
	<-creates
	if err != nil {
		return err
	}
	if mode == "fetch" {
		for got := 0; got < per; {
			m, err := c.Next(jetstream.FetchMaxWait(2 * time.Second))
			if err != nil {
				continue // nothing yet
			}
			if err := m.DoubleAck(ctx); err != nil {
				return err
			}
			got++
			done.Add(1)
		}
		return nil
	}
	it, err := c.Messages(jetstream.PullMaxMessages(32))
	if err != nil {
		return err
	}
	defer it.Stop()
	for range per {
		m, err := it.Next()
		if err != nil {
			return err
		}
		if mode == "consume" {
			err = m.DoubleAck(ctx)
		} else {
			err = m.Ack()
		}
		if err != nil {
			return err
		}
		done.Add(1)
	}
	return nil
}

// directLane takes robot r's per messages out of the stream without a
// consumer: the first message of its subject, then a delete of it.
func directLane(ctx context.Context, st jetstream.Stream, r, per int, done *atomic.Int64) error {
	subj := fmt.Sprintf("benchpull.out.r%05d", r)
	for range per {
		m, err := st.GetMsg(ctx, 0, jetstream.WithGetMsgSubject(subj))
		if err != nil {
			return fmt.Errorf("get %s: %w", subj, err)
		}
		if err := st.DeleteMsg(ctx, m.Sequence); err != nil {
			return fmt.Errorf("delete %s %d: %w", subj, m.Sequence, err)
		}
		done.Add(1)
	}
	return nil
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}
