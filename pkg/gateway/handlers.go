package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/publisher"
)

// Result is the 202 body of POST /v1/messages, and one item of a
// [MultiResponse].
type Result struct {
	// ID is the envelope id the message was stored under (for a fan-out,
	// the robot's copy "<id>.<robot>").
	ID    string `json:"id"`
	Robot string `json:"robot"`
	// Sequence is the message's position in the outbound stream; for a
	// duplicate, that of the copy stored first. 0 when Error is set.
	Sequence uint64 `json:"sequence,omitempty"`
	// Duplicate is true when the stream already held this id (a retried
	// request within the stream's duplicate window) and stored nothing.
	Duplicate bool `json:"duplicate"`
	// Error says why this item was not stored; empty when it was.
	Error string `json:"error,omitempty"`
}

// MultiResponse is the body of POST /v1/fanout, POST /v1/messages:batch
// and of a request with "split": true, whatever the status.
type MultiResponse struct {
	// ID is the fan-out's or split message's base id, from which the
	// copies' and parts' ids derive; empty for a batch.
	ID string `json:"id,omitempty"`
	// Stored and Failed count the items stored (duplicates included) and
	// not stored.
	Stored int `json:"stored"`
	Failed int `json:"failed"`
	// Results has one item per robot (fan-out) or line (batch), in order;
	// with "split": true, one per part (of each robot, robot after robot).
	// Beyond [MaxResults] items, it lists only the failed ones (at most
	// MaxResults) and Omitted counts the items left out.
	Results []Result `json:"results"`
	Omitted int      `json:"omitted,omitempty"`
}

// idempotencyKey is the header whose value becomes the envelope id.
const idempotencyKey = "Idempotency-Key"

func (g *Gateway) postMessage(w http.ResponseWriter, r *http.Request) {
	req, rerr := g.readRequest(w, r)
	if rerr != nil {
		g.fail(w, r, rerr)
		return
	}
	if ps := scopeProblems(tokenOf(r), []string{req.Robot}, func(int) string { return "robot" }); len(ps) > 0 {
		g.fail(w, r, forbidden(ps))
		return
	}
	if g.pub.IsGroup(req.Robot) {
		var problems []string
		if req.Robots != nil {
			problems = append(problems, "robots: only for POST /v1/fanout: set robot")
		}
		g.fanOut(w, r, req, g.expand("robot", req.Robot), problems)
		return
	}
	env, parts, problems := g.buildOne(req, r.Header.Get(idempotencyKey))
	if len(problems) > 0 {
		g.fail(w, r, invalid(problems...))
		return
	}
	if !g.reserve(w, r, parts) {
		return
	}
	if req.Split {
		g.publishSplit(w, r, env, []*envelope.Envelope{env})
		return
	}
	ack, err := g.pub.Publish(r.Context(), env)
	if err != nil {
		g.publishFailed(w, r, env, err)
		return
	}
	g.log.Info("message accepted", "id", env.ID, "robot", env.Robot, "token", tokenName(r), "sequence", ack.Sequence, "duplicate", ack.Duplicate)
	if ack.Duplicate {
		g.refund(r, 1)
	} else {
		g.metrics.storedN(tokenName(r), 1)
	}
	writeJSON(w, http.StatusAccepted, Result{ID: env.ID, Robot: env.Robot, Sequence: ack.Sequence, Duplicate: ack.Duplicate})
}

// publishSplit publishes each of envs with
// [publisher.Publisher.PublishSplit] and answers with a [MultiResponse]
// listing every part (base is the request's envelope, whose id the
// response carries).
func (g *Gateway) publishSplit(w http.ResponseWriter, r *http.Request, base *envelope.Envelope, envs []*envelope.Envelope) {
	var results []publisher.Result
	var errs []error
	for _, env := range envs {
		res, err := g.pub.PublishSplit(r.Context(), env)
		if res == nil { // not splittable: validated before, kept for safety
			if errors.Is(err, envelope.ErrInvalid) {
				g.fail(w, r, invalid(err.Error()))
				return
			}
			res = []publisher.Result{{ID: env.ID, Robot: env.Robot, Err: err}}
		}
		results = append(results, res...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	g.respondMulti(w, r, MultiResponse{ID: base.ID}, results, errors.Join(errs...))
}

// readRequest reads and decodes one JSON object body.
func (g *Gateway) readRequest(w http.ResponseWriter, r *http.Request) (*request, *requestError) {
	data, rerr := readBody(w, r, g.maxBody)
	if rerr != nil {
		return nil, rerr
	}
	return decodeRequest(data)
}

// buildOne builds and checks the envelope of a single-robot request, and
// says how many messages it makes.
func (g *Gateway) buildOne(req *request, idemKey string) (*envelope.Envelope, int, []string) {
	env, parts, problems := build(req, req.Robot, idemKey, g.now(), g.sizeOf(req.Robot))
	if req.Robots != nil {
		problems = append(problems, "robots: only for POST /v1/fanout: set robot")
	}
	if req.Robot != "" && len(g.robots) > 0 && !g.pub.IsGroup(req.Robot) {
		if p := robotProblem(req.Robot, g.robots); p != "" && !hasField(problems, "robot") {
			problems = append(problems, "robot: "+p)
		}
	}
	return env, parts, problems
}

// scopeProblems returns a problem for each of robots outside tok's scope
// (none without a token), field(i) naming robots[i]'s field.
func scopeProblems(tok *Token, robots []string, field func(int) string) []string {
	if tok == nil {
		return nil
	}
	var ps []string
	for i, rb := range robots {
		if rb != "" && !tok.Allows(rb) {
			ps = append(ps, fmt.Sprintf("%s: robot %q is outside the scope of token %s", field(i), clip(rb), tok.Name))
		}
	}
	return ps
}

// forbidden is the 403 of a request naming robots outside its token's scope.
func forbidden(problems []string) *requestError {
	return &requestError{status: http.StatusForbidden, msg: "robot outside the token's scope", problems: problems}
}

func hasField(problems []string, field string) bool {
	for _, p := range problems {
		if len(p) > len(field) && p[:len(field)] == field && p[len(field)] == ':' {
			return true
		}
	}
	return false
}

// publishFailed answers 503 (with Retry-After) for a message the stream
// did not acknowledge.
func (g *Gateway) publishFailed(w http.ResponseWriter, r *http.Request, env *envelope.Envelope, err error) {
	if errors.Is(err, envelope.ErrInvalid) { // validated already; kept for safety
		g.fail(w, r, invalid(err.Error()))
		return
	}
	if errors.Is(err, nats.ErrMaxPayload) { // bounded before; kept for safety: never a 503 to retry
		g.fail(w, r, &requestError{status: http.StatusRequestEntityTooLarge, msg: "message larger than the NATS server accepts"})
		return
	}
	g.log.Warn("message not stored", "id", env.ID, "robot", env.Robot, "token", tokenName(r), "err", err)
	g.refund(r, 1)
	unavailable(w, http.StatusServiceUnavailable, errorBody{Error: "message not stored, retry later: " + publishErrorText(err)})
}

// publishErrorText says, briefly, why the stream did not store a message.
func publishErrorText(err error) string {
	var apiErr *jetstream.APIError
	if errors.Is(err, publisher.ErrStreamFull) && errors.As(err, &apiErr) {
		return "the outbound stream is full (" + apiErr.Description + "): the workers are behind or stopped"
	}
	return clip(err.Error())
}

func (g *Gateway) postFanOut(w http.ResponseWriter, r *http.Request) {
	req, rerr := g.readRequest(w, r)
	if rerr != nil {
		g.fail(w, r, rerr)
		return
	}
	listed := req.Robots[:min(len(req.Robots), MaxFanOut)]
	if ps := scopeProblems(tokenOf(r), listed, func(i int) string { return fmt.Sprintf("robots[%d]", i) }); len(ps) > 0 {
		g.fail(w, r, forbidden(ps))
		return
	}
	var problems []string
	if req.Robot != "" {
		problems = append(problems, "robot: not used by a fan-out: list the robots in robots")
	}
	switch {
	case len(req.Robots) == 0:
		problems = append(problems, "robots: at least one robot required")
	case len(req.Robots) > MaxFanOut:
		problems = append(problems, fmt.Sprintf("robots: %d robots, limit %d", len(req.Robots), MaxFanOut))
	}
	seen := make(map[string]int, len(listed))
	var targets []fanTarget
	for i, rb := range listed {
		if j, dup := seen[rb]; dup {
			problems = append(problems, fmt.Sprintf("robots[%d]: duplicate of robots[%d]", i, j))
			continue
		}
		seen[rb] = i
		if p := g.targetProblem(rb); p != "" {
			problems = append(problems, fmt.Sprintf("robots[%d]: %s", i, p))
			continue
		}
		targets = append(targets, g.expand(fmt.Sprintf("robots[%d]", i), rb)...)
	}
	g.fanOut(w, r, req, dedupTargets(targets), problems)
}

// fanTarget is one robot (or pool) of a fan-out, with the label its
// problems are reported under.
type fanTarget struct {
	name, label string
}

// expand returns the targets a name addressed at field stands for: a
// group's members (each labelled with the group), else the name itself.
func (g *Gateway) expand(field, name string) []fanTarget {
	if !g.pub.IsGroup(name) {
		return []fanTarget{{name: name, label: fmt.Sprintf("%s %q", field, name)}}
	}
	var out []fanTarget
	for _, m := range g.pub.Targets(name) {
		out = append(out, fanTarget{name: m, label: fmt.Sprintf("%s %q: member %q", field, name, m)})
	}
	return out
}

// dedupTargets drops every target after its first occurrence (a robot
// named directly and through a group gets one copy).
func dedupTargets(ts []fanTarget) []fanTarget {
	seen := make(map[string]bool, len(ts))
	out := ts[:0]
	for _, t := range ts {
		if !seen[t.name] {
			seen[t.name] = true
			out = append(out, t)
		}
	}
	return out
}

// fanOut validates req for each target (under its platform's size rules)
// and publishes a copy to each, ids "<id>.<target>", answering with a
// [MultiResponse]; problems are those found already.
func (g *Gateway) fanOut(w http.ResponseWriter, r *http.Request, req *request, targets []fanTarget, problems []string) {
	first := ""
	if len(targets) > 0 {
		first = targets[0].name
	}
	// Validate the message once, addressed to a stand-in robot, then for
	// each target on its own.
	env, parts, ps := build(req, "_", r.Header.Get(idempotencyKey), g.now(), g.sizeOf(first))
	problems = append(problems, ps...)
	if len(targets) > MaxMessagesPerRequest {
		problems = append(problems, fmt.Sprintf("robots: %d robots once groups are expanded, limit %d", len(targets), MaxMessagesPerRequest))
	}
	if n := len(targets) * parts; parts > 1 && n > MaxFanOutSplit {
		problems = append(problems, fmt.Sprintf("split: %d robots × %d parts = %d messages, limit %d", len(targets), parts, n, MaxFanOutSplit))
	}
	names := make([]string, len(targets))
	for i, t := range targets {
		names[i] = t.name
		if p := robotProblem(t.name, g.robots); p != "" {
			problems = append(problems, fmt.Sprintf("%s: %s", t.label, p))
			continue
		}
		if env != nil && len(problems) == 0 {
			// Validated under the first robot's platform: each other robot
			// under its own (a message that fits DingTalk may not fit WeCom).
			if _, _, ps := build(req, t.name, r.Header.Get(idempotencyKey), g.now(), g.sizeOf(t.name)); len(ps) > 0 {
				problems = append(problems, fmt.Sprintf("%s: %s", t.label, strings.Join(ps, "; ")))
			}
		}
	}
	if len(problems) > 0 {
		g.fail(w, r, invalid(problems...))
		return
	}
	if !g.reserve(w, r, len(targets)*parts) {
		return
	}
	if req.Split {
		copies := make([]*envelope.Envelope, len(names))
		for i, rb := range names {
			copies[i] = env.ForRobot(rb, 0)
		}
		g.publishSplit(w, r, env, copies)
		return
	}
	results, err := g.pub.FanOut(r.Context(), env, names)
	g.respondMulti(w, r, MultiResponse{ID: env.ID}, results, err)
}

// targetProblem checks a name a request addresses: a group (see
// [publisher.WithGroups]) or, as [robotProblem] does, a robot or pool.
func (g *Gateway) targetProblem(name string) string {
	if g.pub.IsGroup(name) {
		return robotProblem(name, nil)
	}
	return robotProblem(name, g.robots)
}

func (g *Gateway) postBatch(w http.ResponseWriter, r *http.Request) {
	data, rerr := readBody(w, r, g.maxBody)
	if rerr != nil {
		g.fail(w, r, rerr)
		return
	}
	if r.Header.Get(idempotencyKey) != "" {
		g.fail(w, r, invalid("Idempotency-Key header: not used by a batch: give each line an id"))
		return
	}
	var envs []*envelope.Envelope
	var problems, outside []string
	tok := tokenOf(r)
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(envs) == MaxBatch {
			g.fail(w, r, invalid(fmt.Sprintf("batch: more than %d messages", MaxBatch)))
			return
		}
		envs = append(envs, nil)
		req, rerr := decodeRequest(line)
		if rerr != nil {
			if rerr.status != http.StatusUnprocessableEntity {
				g.fail(w, r, &requestError{status: rerr.status, msg: fmt.Sprintf("line %d: %s", n+1, rerr.msg)})
				return
			}
			for _, p := range rerr.problems {
				problems = append(problems, fmt.Sprintf("line %d: %s", n+1, p))
			}
			continue
		}
		outside = append(outside, scopeProblems(tok, []string{req.Robot}, func(int) string { return fmt.Sprintf("line %d: robot", n+1) })...)
		env, _, ps := g.buildOne(req, "")
		if g.pub.IsGroup(req.Robot) {
			ps = append(ps, fmt.Sprintf("robot: %q is a group: send it with POST /v1/messages or POST /v1/fanout", req.Robot))
		}
		if req.Split {
			ps = append(ps, "split: only for POST /v1/messages and POST /v1/fanout")
		}
		for _, p := range ps {
			problems = append(problems, fmt.Sprintf("line %d: %s", n+1, p))
		}
		envs[len(envs)-1] = env
	}
	switch {
	case len(outside) > 0:
		g.fail(w, r, forbidden(outside))
		return
	case len(problems) > 0:
		g.fail(w, r, invalid(problems...))
		return
	case len(envs) == 0:
		g.fail(w, r, invalid("batch: no messages: send one JSON object per line"))
		return
	}
	if !g.reserve(w, r, len(envs)) {
		return
	}
	results, err := g.pub.PublishAll(r.Context(), envs)
	g.respondMulti(w, r, MultiResponse{}, results, err)
}

// respondMulti answers a fan-out or batch: 202 when every item was stored,
// 503 when none was, 502 when only some were (both with Retry-After and
// the per-item results, bounded by [MaxResults]).
func (g *Gateway) respondMulti(w http.ResponseWriter, r *http.Request, resp MultiResponse, results []publisher.Result, err error) {
	items := make([]Result, len(results))
	token := tokenName(r)
	notStored := 0
	defer func() { g.refund(r, notStored) }()
	for i, res := range results {
		item := Result{ID: res.ID, Robot: res.Robot, Sequence: res.Ack.Sequence, Duplicate: res.Ack.Duplicate}
		if res.Err != nil {
			item.Error = publishErrorText(res.Err)
			resp.Failed++
			notStored++
			g.log.Warn("message not stored", "id", res.ID, "robot", res.Robot, "token", token, "err", res.Err)
		} else {
			resp.Stored++
			if res.Ack.Duplicate {
				notStored++
			} else {
				g.metrics.storedN(token, 1)
			}
			g.log.Info("message accepted", "id", res.ID, "robot", res.Robot, "token", token, "sequence", res.Ack.Sequence, "duplicate", res.Ack.Duplicate)
		}
		items[i] = item
	}
	resp.Results = items
	if len(items) > MaxResults {
		resp.Results = make([]Result, 0, min(resp.Failed, MaxResults))
		for _, it := range items {
			if it.Error != "" && len(resp.Results) < MaxResults {
				resp.Results = append(resp.Results, it)
			}
		}
		resp.Omitted = len(items) - len(resp.Results)
	}
	switch {
	case err == nil && resp.Failed == 0:
		writeJSON(w, http.StatusAccepted, resp)
	case resp.Stored == 0:
		unavailable(w, http.StatusServiceUnavailable, resp)
	default:
		unavailable(w, http.StatusBadGateway, resp)
	}
}

// sizeOf is the size rules of robot's platform ([Options.Size]).
func (g *Gateway) sizeOf(robot string) envelope.Limits {
	if g.size == nil {
		return envelope.Limits{}
	}
	return g.size(robot)
}
