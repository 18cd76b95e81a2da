package deadletter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

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
	ReasonThrottled      Reason = "throttled"       // the platform kept throttling it (or asking to wait) past retry.max_throttles
	ReasonPanic          Reason = "panic"           // handling it crashed the worker's code (the stack is in the worker log)
	ReasonUnknownOutcome Reason = "unknown_outcome" // a worker died posting it; the robot's on_unknown_outcome is dead_letter
	ReasonNoEvent        Reason = "no_event"        // a reply whose inbound event is not (or no longer) stored, or is another app's
	ReasonDigest         Reason = "digest"          // folded into a digest that was dead-lettered (the digest's errcode is kept)
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
	// Truncated is set when the whole record would not fit a NATS
	// message: Envelope is then nil, Raw holds the first bytes of the
	// original (the envelope's JSON, or the raw payload), and
	// OriginalSize and OriginalSHA256 (hex) describe the whole of it.
	// Such a record cannot be replayed; Sequence still locates the
	// original, while the outbound stream holds it.
	Truncated      bool   `json:"truncated,omitempty"`
	OriginalSize   int    `json:"original_size,omitempty"`
	OriginalSHA256 string `json:"original_sha256,omitempty"`
}

// headerReserve is the room left in a NATS message for the headers of a
// dead-letter publish (Nats-Msg-Id and the protocol's framing).
const headerReserve = 1024

// maxTextBytes is the longest Detail or ErrMsg a truncated record keeps.
const maxTextBytes = 1024

// fit returns rec's encoding, truncated as [Record.Truncated] says when it
// is over limit bytes, so that a dead letter always fits and no stored
// message can block its robot.
func fit(rec Record, limit int) ([]byte, error) {
	data, err := json.Marshal(rec)
	if err != nil || len(data) <= limit {
		return data, err
	}
	orig := rec.Raw
	if rec.Envelope != nil {
		if orig, err = json.Marshal(rec.Envelope); err != nil {
			return nil, err
		}
	}
	sum := sha256.Sum256(orig)
	rec.Envelope, rec.Raw = nil, nil
	rec.Truncated, rec.OriginalSize, rec.OriginalSHA256 = true, len(orig), hex.EncodeToString(sum[:])
	rec.Detail, rec.ErrMsg = clipText(rec.Detail), clipText(rec.ErrMsg)
	base, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	// Raw is base64 in JSON: 4 bytes for every 3.
	room := (limit - len(base) - len(`,"raw":""`)) / 4 * 3
	rec.Raw = orig[:max(0, min(room, len(orig)))]
	return json.Marshal(rec)
}

// clipText shortens s to maxTextBytes, on a UTF-8 boundary.
func clipText(s string) string {
	if len(s) <= maxTextBytes {
		return s
	}
	cut := maxTextBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// maxRecordBytes is the largest record js's connection can publish.
func maxRecordBytes(js jetstream.JetStream) int {
	limit := int64(1 << 20) // the server's default
	if nc := js.Conn(); nc != nil && nc.MaxPayload() > 0 {
		limit = nc.MaxPayload()
	}
	return int(limit) - headerReserve
}

// ErrMalformed is matched by the error of [Decode] for data that is not a
// dead-letter record.
var ErrMalformed = errors.New("deadletter: malformed record")

// Encode returns the JSON form of rec that [Publish] stores.
func Encode(rec Record) ([]byte, error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("deadletter: encode: %w", err)
	}
	return data, nil
}

// Decode reads a record stored by [Publish]. Data that is not a JSON
// object, or whose fields have the wrong types, gives an error matching
// [ErrMalformed]; unknown fields are ignored (records written by newer
// versions still list). The envelope is not validated: a dead letter may
// hold one that failed validation.
func Decode(data []byte) (Record, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil || probe == nil {
		return Record{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	var rec Record
	if err := json.Unmarshal(data, &rec); err != nil {
		return Record{}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return rec, nil
}

// Publish writes rec to the dead-letter stream and waits for the stream's
// acknowledgement. Its dedup id ([PublishMsgID]) names the original by
// subject, stream sequence and envelope id, so a worker that dies after
// this call and before acking the original does not produce a second
// record. The stream answers such a second publish with a duplicate ack,
// which Publish takes as success: the id matching means the original
// already has its record. A new original that reuses an old sequence (the
// outbound stream was recreated) has another envelope id and so another
// dedup id: it is stored, never dropped as a duplicate.
//
// A record too large for a NATS message (the connection's max payload)
// is stored truncated (see [Record.Truncated]) under the same dedup id,
// so every message can be dead-lettered.
func Publish(ctx context.Context, js jetstream.JetStream, topo stream.Topology, rec Record) error {
	data, err := fit(rec, maxRecordBytes(js))
	if err != nil {
		return err
	}
	// A duplicate ack is the same record by construction of the id.
	if _, err := js.Publish(ctx, topo.DLQSubject(rec.Robot), data, jetstream.WithMsgID(PublishMsgID(rec))); err != nil {
		return fmt.Errorf("deadletter: publish for robot %s: %w", rec.Robot, err)
	}
	return nil
}

// PublishMsgID is the dedup id [Publish] gives rec:
// "dlq:<subject>:<sequence>:<envelope id>", or for a record without an
// envelope "dlq:<subject>:<sequence>:raw-<first 16 hex digits of the
// payload's SHA-256>".
func PublishMsgID(rec Record) string {
	id := "dlq:" + rec.Subject + ":" + strconv.FormatUint(rec.Sequence, 10) + ":"
	if rec.Envelope != nil {
		return id + rec.Envelope.ID
	}
	sum := sha256.Sum256(rec.Raw)
	return id + "raw-" + hex.EncodeToString(sum[:8])
}

// Entry is a stored dead letter with its sequence in the dead-letter stream.
type Entry struct {
	Seq    uint64
	Record Record
	// Err is set, by [List], for a stored record that could not be
	// decoded: Record then holds only Robot (from its subject). One bad
	// record does not stop a listing; callers report and skip it.
	Err error
}

// ErrNotReplayable is returned when a dead letter holds no decodable envelope.
var ErrNotReplayable = errors.New("deadletter: record has no envelope to replay")

// ErrAlreadyReplayed is returned by [Replay] when the outbound stream
// already holds the replay of that dead letter: it was replayed within the
// stream's duplicate window (two minutes by default), e.g. a double click.
// Nothing new is stored and the dead letter is kept. [ReplayAgain] replays
// it all the same.
var ErrAlreadyReplayed = errors.New("deadletter: already replayed within the duplicate window")

// listBatch is how many dead letters [List] asks the server for at a time.
const listBatch = 256

// List returns up to limit dead letters (all when limit <= 0), oldest first,
// optionally only those of robot; a record that cannot be decoded is
// returned with [Entry.Err] set. It reads the dead-letter stream with an
// ordered consumer, filtered on the server to robot's subject, up to the
// last dead letter stored when it started: records written meanwhile are
// not waited for. A ctx without a deadline gets a default timeout of 30s
// (a large dead-letter stream takes a while).
func List(ctx context.Context, js jetstream.JetStream, topo stream.Topology, robot string, limit int) ([]Entry, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	s, err := js.Stream(ctx, topo.DLQStream())
	if err != nil {
		return nil, fmt.Errorf("deadletter: %s: %w", topo.DLQStream(), err)
	}
	// The last sequence to read: the stream's last, or robot's last.
	last := s.CachedInfo().State.LastSeq
	if s.CachedInfo().State.Msgs == 0 {
		return nil, nil
	}
	cfg := jetstream.OrderedConsumerConfig{
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute, // deleted below; this is the fallback
		MaxResetAttempts:  3,           // nats.go's default retries forever
	}
	if robot != "" {
		subj := topo.DLQSubject(robot)
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("deadletter: last dead letter of robot %s: %w", robot, err)
		}
		last = m.Sequence
		// One subject: nats.go sends it as FilterSubject, which
		// nats-server 2.9 understands too.
		cfg.FilterSubjects = []string{subj}
	}
	c, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("deadletter: read %s: %w", topo.DLQStream(), err)
	}
	batch := listBatch
	if limit > 0 {
		batch = min(batch, limit)
	}
	it, err := c.Messages(jetstream.PullMaxMessages(batch))
	if err != nil {
		return nil, fmt.Errorf("deadletter: read %s: %w", topo.DLQStream(), err)
	}
	defer func() {
		it.Stop()
		if info := c.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			_ = s.DeleteConsumer(dctx, info.Name)
			cancel()
		}
	}()
	var out []Entry
	for limit <= 0 || len(out) < limit {
		m, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return nil, fmt.Errorf("deadletter: read %s (%d read): %w", topo.DLQStream(), len(out), err)
		}
		meta, err := m.Metadata()
		if err != nil {
			return nil, fmt.Errorf("deadletter: read %s: %w", topo.DLQStream(), err)
		}
		seq := meta.Sequence.Stream
		if seq > last {
			break // written after List started
		}
		if rec, err := Decode(m.Data()); err != nil {
			out = append(out, Entry{Seq: seq, Record: Record{Robot: topo.RobotFromSubject(m.Subject())},
				Err: fmt.Errorf("deadletter: decode record %d: %w", seq, err)})
		} else {
			out = append(out, Entry{Seq: seq, Record: rec})
		}
		if seq == last || meta.NumPending == 0 {
			break
		}
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
	rec, err := Decode(m.Data)
	if err != nil {
		return Entry{}, fmt.Errorf("deadletter: decode record %d: %w", seq, err)
	}
	return Entry{Seq: seq, Record: rec}, nil
}

// Replay publishes the envelope of dead letter seq again to its robot's
// outbound subject, and when remove is true deletes the dead letter once
// the replay is stored.
//
// The publish carries the dedup id "replay:<envelope id>:<seq>": distinct
// from the original's (which the stream would drop inside its duplicate
// window), and the same for every replay of this dead letter, so a double
// click or a retried command inside the duplicate window stores one copy.
// The second gets an error matching [ErrAlreadyReplayed] and deletes
// nothing, even with remove: deleting is left to the call that stored the
// replay. After the window the same dead letter can be replayed again;
// [ReplayAgain] does it inside the window too.
//
// A record without an envelope gives [ErrNotReplayable]; a missing one an
// error matching [jetstream.ErrMsgNotFound]. The entry is returned whenever
// it was read.
func Replay(ctx context.Context, js jetstream.JetStream, topo stream.Topology, seq uint64, remove bool) (Entry, error) {
	return replay(ctx, js, topo, seq, remove, "")
}

// ReplayAgain is [Replay] for an operator who means to replay a dead letter
// once more although it was replayed moments ago: its dedup id adds a
// fresh nonce ("replay:<envelope id>:<seq>:<nonce>"), so it never matches
// an earlier replay and gives no protection against a double click.
func ReplayAgain(ctx context.Context, js jetstream.JetStream, topo stream.Topology, seq uint64, remove bool) (Entry, error) {
	return replay(ctx, js, topo, seq, remove, envelope.NewID())
}

// ReplayMsgID is the dedup id of a replay of dead letter seq holding the
// envelope envID; nonce is empty for [Replay] and fresh for [ReplayAgain].
func ReplayMsgID(envID string, seq uint64, nonce string) string {
	id := "replay:" + envID + ":" + strconv.FormatUint(seq, 10)
	if nonce != "" {
		id += ":" + nonce
	}
	return id
}

func replay(ctx context.Context, js jetstream.JetStream, topo stream.Topology, seq uint64, remove bool, nonce string) (Entry, error) {
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
	msgID := stream.MsgID(env.Robot, ReplayMsgID(env.ID, seq, nonce))
	ack, err := js.Publish(ctx, topo.OutSubject(env.Robot), data, jetstream.WithMsgID(msgID))
	if err != nil {
		return e, fmt.Errorf("deadletter: replay %d: publish: %w", seq, err)
	}
	if ack.Duplicate {
		return e, fmt.Errorf("%w: dead letter %d (id %s) is already in %s at sequence %d; the dead letter is kept",
			ErrAlreadyReplayed, seq, env.ID, topo.OutStream(), ack.Sequence)
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
