package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/stream"
)

// Reason says why a message was dead-lettered.
type Reason string

// The reasons a worker dead-letters a message.
const (
	ReasonDecode         Reason = "decode"          // payload is not a valid envelope
	ReasonUnknownRobot   Reason = "unknown_robot"   // no configured robot of that name
	ReasonMissingKeyword Reason = "missing_keyword" // content lacks every robot keyword; no request made
	ReasonPermanent      Reason = "permanent"       // the platform refused it for good
	ReasonExhausted      Reason = "exhausted"       // retryable failures past max attempts or max elapsed time
	ReasonExpired        Reason = "expired"         // expires_at passed before it could be posted
	ReasonRedelivered    Reason = "redelivered"     // handed out too often without an outcome (worker crashes)
)

// Record is one dead letter.
type Record struct {
	// Envelope is the original message; nil when it could not be decoded.
	Envelope *envelope.Envelope `json:"envelope,omitempty"`
	// Raw is the original payload when Envelope is nil.
	Raw []byte `json:"raw,omitempty"`
	// Robot is the robot the message was addressed to.
	Robot string `json:"robot"`
	// Reason says why it was dead-lettered; Detail explains it for humans.
	Reason Reason `json:"reason"`
	Detail string `json:"detail,omitempty"`
	// Class is the delivery outcome of the last attempt, if any was made.
	Class string `json:"class,omitempty"`
	// HTTPStatus, ErrCode and ErrMsg are the platform's last answer.
	HTTPStatus int    `json:"http_status,omitempty"`
	ErrCode    int    `json:"errcode,omitempty"`
	ErrMsg     string `json:"errmsg,omitempty"`
	// Attempts counts HTTP delivery attempts (rate-limit waits excluded).
	Attempts     int       `json:"attempts"`
	FirstAttempt time.Time `json:"first_attempt,omitzero"`
	LastAttempt  time.Time `json:"last_attempt,omitzero"`
	// DeadAt is when the record was written; Worker names who wrote it.
	DeadAt time.Time `json:"dead_at"`
	Worker string    `json:"worker,omitempty"`
	// Subject and Sequence locate the original in the outbound stream.
	Subject  string `json:"subject"`
	Sequence uint64 `json:"sequence"`
}

// Publish writes rec to the dead-letter stream and waits for the stream's
// acknowledgement. Its dedup id is derived from the original's stream
// sequence, so a worker that dies after this call and before acking the
// original does not produce a second record.
func Publish(ctx context.Context, js jetstream.JetStream, topo stream.Topology, rec Record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("deadletter: encode: %w", err)
	}
	id := "dlq:" + rec.Subject + ":" + strconv.FormatUint(rec.Sequence, 10)
	if _, err := js.Publish(ctx, topo.DLQSubject(rec.Robot), data, jetstream.WithMsgID(id)); err != nil {
		return fmt.Errorf("deadletter: publish for robot %s: %w", rec.Robot, err)
	}
	return nil
}

// Entry is a stored dead letter with its sequence in the dead-letter stream.
type Entry struct {
	Seq    uint64
	Record Record
}

// ErrNotReplayable is returned when a dead letter holds no decodable envelope.
var ErrNotReplayable = errors.New("deadletter: record has no envelope to replay")

// List returns up to limit dead letters (all when limit <= 0), oldest first,
// optionally only those of robot.
func List(ctx context.Context, js jetstream.JetStream, topo stream.Topology, robot string, limit int) ([]Entry, error) {
	s, err := js.Stream(ctx, topo.DLQStream())
	if err != nil {
		return nil, fmt.Errorf("deadletter: %s: %w", topo.DLQStream(), err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("deadletter: info: %w", err)
	}
	var out []Entry
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		if limit > 0 && len(out) >= limit {
			break
		}
		e, err := Get(ctx, js, topo, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if robot != "" && e.Record.Robot != robot {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// Get returns the dead letter at seq.
func Get(ctx context.Context, js jetstream.JetStream, topo stream.Topology, seq uint64) (Entry, error) {
	s, err := js.Stream(ctx, topo.DLQStream())
	if err != nil {
		return Entry{}, fmt.Errorf("deadletter: %s: %w", topo.DLQStream(), err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return Entry{}, fmt.Errorf("deadletter: get %d: %w", seq, err)
	}
	var rec Record
	if err := json.Unmarshal(m.Data, &rec); err != nil {
		return Entry{}, fmt.Errorf("deadletter: decode record %d: %w", seq, err)
	}
	return Entry{Seq: seq, Record: rec}, nil
}

// Replay publishes the envelope of dead letter seq again to its robot's
// outbound subject. The publish carries a dedup id distinct from the
// original's (the original's would be dropped inside the duplicate window).
// When remove is true the dead letter is deleted once the replay is stored.
func Replay(ctx context.Context, js jetstream.JetStream, topo stream.Topology, seq uint64, remove bool) (Entry, error) {
	e, err := Get(ctx, js, topo, seq)
	if err != nil {
		return Entry{}, err
	}
	env := e.Record.Envelope
	if env == nil {
		return e, fmt.Errorf("%w: sequence %d (%s)", ErrNotReplayable, seq, e.Record.Reason)
	}
	data, err := envelope.Encode(env)
	if err != nil {
		return e, fmt.Errorf("deadletter: replay %d: %w", seq, err)
	}
	msgID := "replay:" + env.ID + ":" + strconv.FormatUint(seq, 10)
	if _, err := js.Publish(ctx, topo.OutSubject(env.Robot), data, jetstream.WithMsgID(msgID)); err != nil {
		return e, fmt.Errorf("deadletter: replay %d: publish: %w", seq, err)
	}
	if remove {
		s, err := js.Stream(ctx, topo.DLQStream())
		if err != nil {
			return e, fmt.Errorf("deadletter: %s: %w", topo.DLQStream(), err)
		}
		if err := s.DeleteMsg(ctx, seq); err != nil {
			return e, fmt.Errorf("deadletter: delete %d after replay: %w", seq, err)
		}
	}
	return e, nil
}
