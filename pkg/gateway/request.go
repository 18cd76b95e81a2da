package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/botrelay/botrelay/pkg/envelope"
)

// request is the body of POST /v1/messages (one message), of each line of
// POST /v1/messages:batch, and of POST /v1/fanout (with Robots instead of
// Robot). It is an envelope with three conveniences: Text and Markdown
// stand for message.text and message.markdown, and TTL for expires_at;
// Split asks for a message too long for one post to be sent in parts.
type request struct {
	V         int                `json:"v"`
	ID        string             `json:"id"`
	Robot     string             `json:"robot"`
	Robots    []string           `json:"robots"`
	Message   *envelope.Message  `json:"message"`
	Text      *string            `json:"text"`
	Markdown  *envelope.Markdown `json:"markdown"`
	At        *envelope.At       `json:"at"`
	CreatedAt *time.Time         `json:"created_at"`
	ExpiresAt *time.Time         `json:"expires_at"`
	TTL       string             `json:"ttl"`
	Labels    map[string]string  `json:"labels"`
	Split     bool               `json:"split"`
	// ReplyTo and MentionSender: only for POST /v1/replies.
	ReplyTo       string `json:"reply_to"`
	MentionSender bool   `json:"mention_sender"`
}

// requestError is a request the gateway refuses: an HTTP status, a message
// and, for a validation failure, the problems, each "<json path>: <what>".
type requestError struct {
	status   int
	msg      string
	problems []string
}

func (e *requestError) Error() string {
	if len(e.problems) == 0 {
		return e.msg
	}
	return e.msg + ": " + strings.Join(e.problems, "; ")
}

func invalid(problems ...string) *requestError {
	return &requestError{status: http.StatusUnprocessableEntity, msg: "invalid message", problems: problems}
}

// readBody reads the whole body, at most limit bytes: a longer one is a 413.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *requestError) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, &requestError{status: http.StatusRequestEntityTooLarge,
				msg: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
		}
		return nil, &requestError{status: http.StatusBadRequest, msg: "cannot read the request body: " + err.Error()}
	}
	return data, nil
}

// decodeRequest parses one JSON object strictly. Malformed JSON is a 400;
// a well-formed object with an unknown field or a value of the wrong type
// is a 422 naming the field.
func decodeRequest(data []byte) (*request, *requestError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var req request
	if err := dec.Decode(&req); err != nil {
		return nil, decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &requestError{status: http.StatusBadRequest,
			msg: fmt.Sprintf("bad JSON: data after the object at offset %d", dec.InputOffset())}
	}
	return &req, nil
}

func decodeError(err error) *requestError {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := te.Field
		if field == "" {
			return &requestError{status: http.StatusBadRequest, msg: "bad JSON: the body must be a JSON object"}
		}
		return invalid(fmt.Sprintf("%s: must be a JSON %s, not %s", field, jsonType(te.Type.Kind().String()), te.Value))
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return invalid(strings.Trim(field, `"`) + ": unknown field")
	}
	if errors.Is(err, io.EOF) {
		return &requestError{status: http.StatusBadRequest, msg: "bad JSON: empty body"}
	}
	return &requestError{status: http.StatusBadRequest, msg: "bad JSON: " + strings.TrimPrefix(err.Error(), "json: ")}
}

// jsonType names a Go kind the way a JSON client thinks of it.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "struct", "map", "ptr":
		return "object"
	case "slice", "array":
		return "array"
	case "bool":
		return "boolean"
	default:
		return "number"
	}
}

// build turns req into an envelope for robot, filling in what is missing:
// the id (idemKey when given, else a fresh [envelope.NewID]), created_at
// (now) and v. It validates the result and returns every problem found,
// and how many messages it makes: 1, or with Split its number of parts.
func build(req *request, robot, idemKey string, now time.Time, size envelope.Limits) (*envelope.Envelope, int, []string) {
	var problems []string
	if robot != replyRobot && (req.ReplyTo != "" || req.MentionSender) {
		problems = append(problems, "reply_to: only for POST /v1/replies")
	}
	msg := envelope.Message{}
	if req.Message != nil {
		msg = *req.Message
	}
	if req.Text != nil {
		if msg.Text != nil {
			problems = append(problems, "text: also set as message.text: set one")
		} else {
			msg.Text = &envelope.Text{Content: *req.Text}
		}
	}
	if req.Markdown != nil {
		if msg.Markdown != nil {
			problems = append(problems, "markdown: also set as message.markdown: set one")
		} else {
			msg.Markdown = req.Markdown
		}
	}

	id := req.ID
	switch {
	case idemKey != "" && req.ID != "" && req.ID != idemKey:
		problems = append(problems, "id: differs from the Idempotency-Key header: send one or make them equal")
	case idemKey != "":
		id = idemKey
	case id == "":
		id = envelope.NewID()
	}

	env := &envelope.Envelope{
		V:         req.V,
		ID:        id,
		Robot:     robot,
		Message:   msg,
		At:        req.At,
		CreatedAt: now.UTC(),
		ExpiresAt: req.ExpiresAt,
		Labels:    req.Labels,
	}
	if env.V == 0 {
		env.V = envelope.Version
	}
	if req.CreatedAt != nil {
		env.CreatedAt = *req.CreatedAt
	}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		switch {
		case req.ExpiresAt != nil:
			problems = append(problems, "ttl: set either ttl or expires_at, not both")
		case err != nil:
			problems = append(problems, fmt.Sprintf("ttl: %q is not a duration such as 90s, 10m or 1h30m", req.TTL))
		case d <= 0:
			problems = append(problems, "ttl: must be positive")
		default:
			exp := env.CreatedAt.Add(d)
			env.ExpiresAt = &exp
		}
	}
	verr := env.ValidateFor(size) // the robot's platform's size rules
	parts := []*envelope.Envelope{env}
	if req.Split {
		parts, verr = envelope.SplitFor(env, size) // the same checks, the size per part
	}
	for _, fe := range fieldErrors(verr) {
		field, problem := fe.Field, fe.Problem
		if field == "id" && idemKey != "" {
			field = "Idempotency-Key header"
		}
		if !req.Split && errors.Is(fe, envelope.ErrTooLarge) {
			switch msg.Kind() {
			case envelope.KindText, envelope.KindMarkdown:
				problem += `; set "split": true to send it in parts`
			}
		}
		problems = append(problems, field+": "+problem)
	}
	if verr != nil {
		return env, 0, problems
	}
	if len(parts) > MaxSplitParts {
		problems = append(problems, fmt.Sprintf("message: %d parts when split, limit %d", len(parts), MaxSplitParts))
	}
	for _, part := range parts[:min(len(parts), MaxSplitParts)] {
		if data, err := envelope.Encode(part); err == nil && len(data) > MaxEnvelopeBytes {
			problems = append(problems, fmt.Sprintf("envelope: %d bytes encoded (labels included), limit %d", len(data), MaxEnvelopeBytes))
			break
		}
	}
	return env, len(parts), problems
}

// fieldErrors returns the [envelope.FieldError]s of a Validate error.
func fieldErrors(err error) []*envelope.FieldError {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	var out []*envelope.FieldError
	for _, e := range errs {
		if fe, ok := errors.AsType[*envelope.FieldError](e); ok {
			out = append(out, fe)
		} else {
			out = append(out, &envelope.FieldError{Field: "envelope", Problem: e.Error()})
		}
	}
	return out
}

// robotProblem checks a robot name as [envelope.Envelope.Validate] does
// and, when allowed is not empty, against it. It returns "" for a good
// name, else what is wrong with it.
func robotProblem(name string, allowed []string) string {
	probe := envelope.New(name, envelope.Message{Text: &envelope.Text{Content: "-"}}, envelope.WithID("probe"))
	for _, fe := range fieldErrors(probe.Validate()) {
		if fe.Field == "robot" {
			return fe.Problem
		}
	}
	if len(allowed) > 0 && !slices.Contains(allowed, name) {
		// Never the allow-list: it is long, and no caller's business.
		return fmt.Sprintf("unknown robot %q: not a robot this gateway accepts", name)
	}
	return ""
}

// maxEcho is the longest error or problem text an answer carries: a
// problem may quote a field name the client sent.
const maxEcho = 256

// clip shortens s to at most maxEcho bytes (on a UTF-8 boundary), marking
// the cut.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// capProblems returns at most [MaxProblems] problems, each clipped, the
// last one counting those left out.
func capProblems(ps []string) []string {
	if len(ps) == 0 {
		return nil
	}
	n := min(len(ps), MaxProblems)
	if len(ps) > MaxProblems {
		n--
	}
	out := make([]string, 0, n+1)
	for _, p := range ps[:n] {
		out = append(out, clip(p))
	}
	if len(ps) > n {
		out = append(out, fmt.Sprintf("… and %d more problems", len(ps)-n))
	}
	return out
}
