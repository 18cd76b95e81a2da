package delivery

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"time"

	"github.com/botrelay/botrelay/pkg/envelope"
)

// maxResponse bounds how much of a response body is read.
const maxResponse = 64 << 10

// userAgent is sent with every request.
const userAgent = "botrelay/1"

// Deliverer renders, signs and posts envelopes to robots and classifies the
// answers. It is safe for concurrent use; one Deliverer (and so one
// keep-alive HTTP client) serves a whole process.
type Deliverer struct {
	client  *http.Client
	now     func() time.Time
	timeout time.Duration
	rules   map[string][]Rule
	logger  *slog.Logger
	// maxRetryAfter caps every Result.RetryAfter.
	maxRetryAfter time.Duration
	// bindConns: the client is HTTP/1-only, so write deadlines are set on
	// its connections and NotSent can be told for sure.
	bindConns bool
}

// New returns a Deliverer. Options:
//
//   - [WithHTTPClient]: the client to send with (default [NewHTTPClient]);
//   - [WithProxy]: the default client's proxy function (default
//     [http.ProxyFromEnvironment]);
//   - [WithClock]: the signing clock (default [time.Now]);
//   - [WithTimeout]: the per-request timeout (default [DefaultTimeout]);
//   - [WithRules]: errcode rules overriding [DefaultRules];
//   - [WithMaxRetryAfter]: the cap of requested delays (default
//     [DefaultMaxRetryAfter]);
//   - [WithLogger]: the logger (default [slog.Default]).
//
// A bad option gives an error matching [ErrInvalidOption].
func New(opts ...Option) (*Deliverer, error) {
	o := options{now: time.Now, timeout: DefaultTimeout, rules: map[string][]Rule{}, maxWait: DefaultMaxRetryAfter}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.client != nil && o.proxy != nil {
		return nil, fmt.Errorf("%w: WithProxy applies to the default client only, not with WithHTTPClient", ErrInvalidOption)
	}
	if o.client == nil {
		o.client = NewHTTPClient(o.timeout)
		if o.proxy != nil {
			o.client.Transport.(*http.Transport).Proxy = o.proxy
		}
	}
	if o.logger == nil {
		o.logger = slog.Default()
	}
	rules := map[string][]Rule{}
	for _, p := range PlatformNames() {
		rules[p] = append(append([]Rule(nil), o.rules[p]...), DefaultRules(p)...)
	}
	return &Deliverer{
		client: o.client, now: o.now, timeout: o.timeout, rules: rules, logger: o.logger,
		maxRetryAfter: o.maxWait, bindConns: http1Only(o.client),
	}, nil
}

// Deliver makes one attempt to post env to robot and classifies the
// outcome; it never retries (the worker owns retries).
//
// It renders env for robot.Platform (see [Platform]: DingTalk JSON with
// msgUuid = env.ID, POPO text, a Feishu text or card, a WeCom text,
// markdown, news or template card), refuses without any request what
// cannot succeed (invalid robot or message, missing keyword:
// [CheckKeywords], a body over the platform's [Platform.MaxBody], a WeCom
// text or markdown over its limit) as Permanent, signs with the clock at
// this very call (DingTalk: timestamp and sign on the URL; POPO and
// Feishu: in the body; WeCom: no signature), posts and classifies with
// [Deliverer.Classify] or [ClassifyError].
//
// With a write deadline in ctx ([WithWriteDeadline]) that passes before
// the request was written, or that had passed already, the result is
// [NotSent] and the platform received no complete request.
//
// The Result never holds the robot's secret, webhook token or hook id.
func (d *Deliverer) Deliver(ctx context.Context, robot Robot, env *envelope.Envelope) Result {
	res := d.deliver(ctx, robot, env)
	if res.Err != nil || res.ErrMsg != "" || res.Reason != "" || res.MessageID != "" {
		// Built only when there is text to scrub: most successes have none.
		res = newScrubber(robot).result(res)
	}
	if !d.logger.Enabled(ctx, slog.LevelDebug) {
		return res
	}
	attrs := []slog.Attr{
		slog.String("robot", robot.Name),
		slog.String("platform", robot.Platform),
		slog.String("webhook", Redact(robot.Webhook)),
		slog.String("outcome", res.Outcome.String()),
		slog.Int("http_status", res.HTTPStatus),
	}
	if env != nil {
		attrs = append(attrs, slog.String("id", env.ID))
	}
	if res.Outcome != Success {
		attrs = append(attrs, slog.Int("errcode", res.ErrCode), slog.String("reason", res.Reason))
	}
	d.logger.LogAttrs(ctx, slog.LevelDebug, "delivery attempt", attrs...)
	return res
}

func permanent(reason string, err error) Result {
	return Result{Outcome: Permanent, Reason: reason, Err: err}
}

func (d *Deliverer) deliver(ctx context.Context, robot Robot, env *envelope.Envelope) Result {
	if u, err := url.Parse(robot.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return permanent("invalid webhook", fmt.Errorf("%w: webhook of robot %q is not an http(s) URL", ErrInvalidRobot, robot.Name))
	}
	p := lookup(robot.Platform)
	if p == nil {
		return permanent("unknown platform", fmt.Errorf("%w: unknown platform %q", ErrInvalidRobot, robot.Platform))
	}
	if env == nil {
		return permanent("invalid message", fmt.Errorf("%w: nil envelope", ErrInvalidMessage))
	}
	if err := CheckKeywords(robot, env); err != nil {
		reason := "invalid message"
		if errors.Is(err, ErrMissingKeyword) {
			reason = "keywords not in content"
		}
		return permanent(reason, err)
	}

	out, err := p.render(env, robot, d.now())
	if errors.Is(err, ErrTooLong) {
		return permanent("message too long", err)
	}
	if err != nil {
		return permanent("invalid message", err)
	}
	target := out.url
	payload, err := encodeJSON(out.body)
	if err != nil {
		return permanent("invalid message", fmt.Errorf("%w: %w", ErrInvalidMessage, err))
	}
	if p.MaxBody > 0 && len(payload) > p.MaxBody {
		return permanent("message too long", fmt.Errorf("%w: %d bytes, %s accepts %d", ErrTooLong, len(payload), p.Title, p.MaxBody))
	}

	if ctx.Err() != nil {
		return ClassifyError(ctx, ctx.Err())
	}
	deadline, _ := WriteDeadline(ctx)
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return Result{Outcome: NotSent, Reason: "not sent: the write deadline had passed",
			Err: fmt.Errorf("%w: %s before the call", ErrWriteDeadline, time.Since(deadline).Round(time.Millisecond))}
	}
	reqCtx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	sendCtx, cancelSend := context.WithCancelCause(reqCtx)
	defer cancelSend(nil)
	guard := newSendGuard(deadline, d.bindConns, cancelSend)
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(sendCtx, guard.trace()), http.MethodPost, target, newPayload(payload))
	if err != nil {
		guard.finish(false)
		return permanent("invalid webhook", fmt.Errorf("%w: cannot build the request of robot %q", ErrInvalidRobot, robot.Name))
	}
	req.ContentLength = int64(len(payload))
	req.GetBody = func() (io.ReadCloser, error) { return newPayload(payload), nil }
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := d.client.Do(req)
	guard.finish(err == nil)
	if err != nil {
		if reason := guard.notSent(); reason != "" {
			return Result{Outcome: NotSent, Reason: reason,
				Err: fmt.Errorf("%w: %w", ErrWriteDeadline, redactURLError(err))}
		}
		res := ClassifyError(ctx, err)
		if errors.Is(err, ErrWriteDeadline) {
			res.Reason = "not written by the write deadline; may have been sent"
		}
		return res
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		res := ClassifyError(ctx, fmt.Errorf("reading the response: %w", err))
		res.HTTPStatus = resp.StatusCode
		return res
	}
	// Drain a little more so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
	return d.Classify(robot.Platform, Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: data})
}

// encodeJSON marshals v without HTML escaping ("<" stays "<"), which keeps
// markdown readable and the byte count the platform sees.
func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
