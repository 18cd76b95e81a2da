package gateway_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/gateway"
	"github.com/botrelay/botrelay/pkg/inbound"
	"github.com/botrelay/botrelay/pkg/publisher"
)

// openAPIDoc is the parsed document with a small JSON Schema validator
// for the subset the document uses: $ref, type, required, properties,
// additionalProperties, items, oneOf, allOf, enum, pattern, minItems,
// maxItems, maxProperties, maxLength.
type openAPIDoc struct {
	root map[string]any
}

// resolve follows a "$ref" to a node of the document.
func (d openAPIDoc) resolve(t *testing.T, node map[string]any) map[string]any {
	t.Helper()
	for {
		ref, ok := node["$ref"].(string)
		if !ok {
			return node
		}
		require.True(t, strings.HasPrefix(ref, "#/"), "ref %s", ref)
		var cur any = d.root
		for _, part := range strings.Split(ref[2:], "/") {
			m, ok := cur.(map[string]any)
			require.True(t, ok, "ref %s", ref)
			cur, ok = m[part]
			require.True(t, ok, "ref %s does not resolve", ref)
		}
		node = cur.(map[string]any)
	}
}

// validate returns the problems of v against schema, "" paths meaning
// the root.
func (d openAPIDoc) validate(t *testing.T, schema map[string]any, v any, path string) []string {
	t.Helper()
	schema = d.resolve(t, schema)
	var ps []string
	bad := func(format string, a ...any) { ps = append(ps, path+": "+fmt.Sprintf(format, a...)) }
	if all, ok := schema["allOf"].([]any); ok {
		for _, s := range all {
			ps = append(ps, d.validate(t, s.(map[string]any), v, path)...)
		}
	}
	if one, ok := schema["oneOf"].([]any); ok {
		n := 0
		for _, s := range one {
			if len(d.validate(t, s.(map[string]any), v, path)) == 0 {
				n++
			}
		}
		if n != 1 {
			bad("matches %d of the oneOf schemas, want 1", n)
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		bad("%v not in %v", v, enum)
	}
	switch typ, _ := schema["type"].(string); typ {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("not an object")
			break
		}
		props, _ := schema["properties"].(map[string]any)
		for _, r := range asSlice(schema["required"]) {
			if _, ok := m[r.(string)]; !ok {
				bad("required property %s missing", r)
			}
		}
		if n, ok := schema["maxProperties"].(float64); ok && len(m) > int(n) {
			bad("%d properties, at most %v", len(m), n)
		}
		for k, val := range m {
			if p, ok := props[k]; ok {
				ps = append(ps, d.validate(t, p.(map[string]any), val, path+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					bad("property %s not in the schema", k)
				}
			case map[string]any:
				ps = append(ps, d.validate(t, ap, val, path+"."+k)...)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("not an array")
			break
		}
		if n, ok := schema["maxItems"].(float64); ok && len(a) > int(n) {
			bad("%d items, at most %v", len(a), n)
		}
		if n, ok := schema["minItems"].(float64); ok && len(a) < int(n) {
			bad("%d items, at least %v", len(a), n)
		}
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range a {
				ps = append(ps, d.validate(t, items, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			bad("not a string")
			break
		}
		if p, ok := schema["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(s) {
			bad("%q does not match %s", s, p)
		}
		if n, ok := schema["maxLength"].(float64); ok && len(s) > int(n) {
			bad("%d bytes, at most %v", len(s), n)
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			bad("not an integer")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("not a boolean")
		}
	case "":
	default:
		t.Fatalf("%s: schema type %q not supported by the test's validator", path, typ)
	}
	return ps
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// operation returns the document's operation for method and path.
func (d openAPIDoc) operation(t *testing.T, method, path string) map[string]any {
	t.Helper()
	paths := d.root["paths"].(map[string]any)
	item, ok := paths[path].(map[string]any)
	require.True(t, ok, "%s is not documented", path)
	op, ok := item[strings.ToLower(method)].(map[string]any)
	require.True(t, ok, "%s %s is not documented", method, path)
	return op
}

// documented lists every "METHOD path status" of the document.
func (d openAPIDoc) documented() []string {
	var out []string
	for path, item := range d.root["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			for status := range op.(map[string]any)["responses"].(map[string]any) {
				out = append(out, strings.ToUpper(method)+" "+path+" "+status)
			}
		}
	}
	sort.Strings(out)
	return out
}

// check validates a response against the document: its status is
// documented for the operation, its content type too, its body matches
// the schema and the documented headers are there. A JSON request body
// accepted is checked against the request schema.
func (d openAPIDoc) check(t *testing.T, method, path, reqBody string, r response) {
	t.Helper()
	op := d.operation(t, method, path)
	if rb, ok := op["requestBody"].(map[string]any); ok && r.status == http.StatusAccepted && json.Valid([]byte(reqBody)) {
		if c, ok := rb["content"].(map[string]any)["application/json"].(map[string]any); ok {
			var v any
			require.NoError(t, json.Unmarshal([]byte(reqBody), &v))
			require.Empty(t, d.validate(t, c["schema"].(map[string]any), v, "request"), "request %s", reqBody)
		}
	}
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(r.status)].(map[string]any)
	require.True(t, ok, "%s %s answered %d, not documented (body %s)", method, path, r.status, r.body)
	resp = d.resolve(t, resp)
	for name := range asMap(resp["headers"]) {
		require.NotEmpty(t, r.header.Get(name), "%s %s %d: header %s documented but not sent", method, path, r.status, name)
	}
	ct, _, err := mime.ParseMediaType(r.header.Get("Content-Type"))
	require.NoError(t, err)
	media, ok := asMap(resp["content"])[ct].(map[string]any)
	require.True(t, ok, "%s %s %d: content type %s not documented", method, path, r.status, ct)
	var body any = string(r.body)
	if ct == "application/json" {
		require.NoError(t, json.Unmarshal(r.body, &body), "%s", r.body)
	}
	require.Empty(t, d.validate(t, media["schema"].(map[string]any), body, "response"), "%s %s %d: body %.500s", method, path, r.status, r.body)
}

func asMap(v any) map[string]any { m, _ := v.(map[string]any); return m }

// A callback signed at the fixtures' clock (2025-03-01T12:00:00Z) with
// cbSecret, computed with python3's hmac (see callbacks_test.go).
const (
	cbTS2   = "1740830400000"
	cbSign2 = "P40IjKTTXJY3S4Nn5TMklUOwoY+7ZJPbYtG62Vr0hio="
	cbPath  = "/v1/callbacks/dingtalk/helpdesk"
	cbDoc   = "/v1/callbacks/dingtalk/{app}"
)

var cbSigned = []string{"timestamp", cbTS2, "sign", cbSign2}

// TestOpenAPI checks the document served at GET /openapi.json against the
// running gateway: every documented route and status is produced by a
// request below, and every answer matches its documented schema.
func TestOpenAPI(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	_, js := testenv.Connect(t, testenv.NATSURL(t))
	topo := testenv.Topology(t, js)
	topo.Limits.OutMaxMsgsPerRobot = 3
	f := serve(t, js, topo, gateway.Options{
		Limiter: limiterFor(t), MaxBodyBytes: 256 << 10, MaxAlertmanagerBodyBytes: 256 << 10, Ready: ready.Load,
		Access: []gateway.Token{
			{Name: "all", SHA256: sha256.Sum256([]byte("tok-all"))},
			{Name: "scoped", SHA256: sha256.Sum256([]byte("tok-scoped")), Robots: []string{"team-a-*"}},
			{Name: "slow", SHA256: sha256.Sum256([]byte("tok-slow")), Rate: 0.01, Burst: 1},
		},
		Apps: []gateway.App{{Name: "helpdesk", Secret: cbSecret}},
		Inbound: func(ctx context.Context, e *inbound.Event) (uint64, error) {
			return inbound.Publish(ctx, js, topo, e)
		},
		Events: func(ctx context.Context, id string) (*inbound.Event, error) { return inbound.Get(ctx, js, topo, id) },
	}, publisher.WithDefaultTimeout(2*time.Second), publisher.WithGroups(func(name string) ([]string, bool) {
		if name == "am-grp" {
			return []string{"r11", "full"}, true
		}
		return nil, false
	}))
	ctx := context.Background()
	fill := func(robot string, n int) {
		for i := range n {
			_, err := js.Publish(ctx, topo.OutSubject(robot), fmt.Appendf(nil, "%d", i))
			require.NoError(t, err)
		}
	}
	fill("full", 3)      // at the per-robot cap: refused
	fill("part-full", 2) // room for one more

	r := f.do(t, http.MethodGet, "/openapi.json", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, gateway.OpenAPI(), r.body)
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(r.body, &doc.root))
	require.Equal(t, "3.0.3", doc.root["openapi"])

	firing, amDoc := amPayload(t, "firing.json"), "/v1/alertmanager/{target}"
	split := jsonBody(t, map[string]any{"robot": "part-full", "text": longLines(300), "split": true})
	type call struct {
		method, path, body, token string
		prep                      func()
		header                    []string
		docPath                   string // the documented path, when path fills its template
	}
	all := "tok-all"
	cases := map[string]call{
		"GET /healthz 200":      {method: "GET", path: "/healthz"},
		"GET /readyz 200":       {method: "GET", path: "/readyz"},
		"GET /readyz 503":       {method: "GET", path: "/readyz", prep: func() { ready.Store(false) }},
		"GET /openapi.json 200": {method: "GET", path: "/openapi.json"},

		"POST /v1/messages 202": {path: "/v1/messages", token: all, body: `{"robot":"r1","text":"hi","labels":{"team":"db"},"ttl":"10m"}`},
		"POST /v1/messages 400": {path: "/v1/messages", token: all, body: `{"robot":`},
		"POST /v1/messages 401": {path: "/v1/messages", body: `{"robot":"ops","text":"hi"}`},
		"POST /v1/messages 403": {path: "/v1/messages", token: "tok-scoped", body: `{"robot":"ops","text":"hi"}`},
		"POST /v1/messages 413": {path: "/v1/messages", token: all, body: `{"robot":"ops","text":"` + strings.Repeat("x", 300<<10) + `"}`},
		"POST /v1/messages 422": {path: "/v1/messages", token: all, body: `{"robot":"ops","markdown":{"text":"no title"}}`},
		"POST /v1/messages 429": {path: "/v1/messages", token: "tok-slow", body: `{"robot":"ops","text":"hi"}`},
		"POST /v1/messages 502": {path: "/v1/messages", token: all, body: split},
		"POST /v1/messages 503": {path: "/v1/messages", token: all, body: `{"robot":"full","text":"hi"}`},

		"POST /v1/callbacks/dingtalk/{app} 200": {path: cbPath, docPath: cbDoc, body: callbackBody("m1"), header: cbSigned},
		"POST /v1/callbacks/dingtalk/{app} 401": {path: cbPath, docPath: cbDoc, body: callbackBody("m2"), header: []string{"timestamp", cbTS2}},
		"POST /v1/callbacks/dingtalk/{app} 404": {path: "/v1/callbacks/dingtalk/nope", docPath: cbDoc, body: callbackBody("m3"), header: cbSigned},
		"POST /v1/callbacks/dingtalk/{app} 409": {path: cbPath, docPath: cbDoc, body: callbackBody("m1"), header: cbSigned},
		"POST /v1/callbacks/dingtalk/{app} 413": {path: cbPath, docPath: cbDoc, body: strings.Repeat("x", 300<<10), header: cbSigned},
		"POST /v1/callbacks/dingtalk/{app} 422": {path: cbPath, docPath: cbDoc, body: `{"msgId":"m4"}`, header: cbSigned},
		"POST /v1/callbacks/dingtalk/{app} 503": {path: cbPath, docPath: cbDoc, body: callbackBody("m5"), header: cbSigned,
			prep: func() { require.NoError(t, js.DeleteStream(ctx, topo.InStream())) }},

		// The callbacks' 503 removed the inbound stream: the replies' 202
		// makes it and an event again, their 503 removes it again.
		"POST /v1/replies 202": {path: "/v1/replies", token: all, body: `{"reply_to":"helpdesk.1","text":"done","mention_sender":true}`, prep: func() {
			require.NoError(t, topo.Ensure(ctx, js))
			e, err := inbound.ParseDingTalk("helpdesk", []byte(callbackBody("r1")), time.Now())
			require.NoError(t, err)
			_, err = inbound.Publish(ctx, js, topo, e)
			require.NoError(t, err)
		}},
		"POST /v1/replies 400": {path: "/v1/replies", token: all, body: `{"reply_to":`},
		"POST /v1/replies 401": {path: "/v1/replies", body: `{"reply_to":"helpdesk.1","text":"done"}`},
		"POST /v1/replies 403": {path: "/v1/replies", token: "tok-scoped", body: `{"reply_to":"helpdesk.1","text":"done"}`},
		"POST /v1/replies 404": {path: "/v1/replies", token: all, body: `{"reply_to":"helpdesk.9","text":"done"}`},
		"POST /v1/replies 422": {path: "/v1/replies", token: all, body: `{"text":"done"}`},
		"POST /v1/replies 503": {path: "/v1/replies", token: all, body: `{"reply_to":"helpdesk.1","text":"done"}`,
			prep: func() { require.NoError(t, js.DeleteStream(ctx, topo.InStream())) }},

		"POST /v1/fanout 202": {path: "/v1/fanout", token: all, body: `{"robots":["r2","r3"],"text":"hi"}`},
		"POST /v1/fanout 400": {path: "/v1/fanout", token: all, body: `[]`},
		"POST /v1/fanout 401": {path: "/v1/fanout", token: "wrong", body: `{"robots":["ops"],"text":"hi"}`},
		"POST /v1/fanout 403": {path: "/v1/fanout", token: "tok-scoped", body: `{"robots":["team-a-1","ops"],"text":"hi"}`},
		"POST /v1/fanout 413": {path: "/v1/fanout", token: all, body: `{"robots":["ops"],"text":"` + strings.Repeat("x", 300<<10) + `"}`},
		"POST /v1/fanout 422": {path: "/v1/fanout", token: all, body: `{"text":"hi"}`},
		"POST /v1/fanout 429": {path: "/v1/fanout", token: "tok-slow", body: `{"robots":["ops"],"text":"hi"}`},
		"POST /v1/fanout 502": {path: "/v1/fanout", token: all, body: `{"robots":["r6","full"],"text":"hi"}`},
		"POST /v1/fanout 503": {path: "/v1/fanout", token: all, body: `{"robots":["full"],"text":"hi"}`},

		"POST /v1/alertmanager/{target} 202": {path: "/v1/alertmanager/r10", docPath: amDoc, token: all, body: firing},
		"POST /v1/alertmanager/{target} 400": {path: "/v1/alertmanager/r10", docPath: amDoc, token: all, body: `{"version":`},
		"POST /v1/alertmanager/{target} 401": {path: "/v1/alertmanager/r10", docPath: amDoc, body: firing},
		"POST /v1/alertmanager/{target} 403": {path: "/v1/alertmanager/ops", docPath: amDoc, token: "tok-scoped", body: firing},
		"POST /v1/alertmanager/{target} 404": {path: "/v1/alertmanager/a.b", docPath: amDoc, token: all, body: firing},
		"POST /v1/alertmanager/{target} 413": {path: "/v1/alertmanager/r10", docPath: amDoc, token: all, body: strings.Repeat("x", 300<<10)},
		"POST /v1/alertmanager/{target} 422": {path: "/v1/alertmanager/r10", docPath: amDoc, token: all, body: strings.Replace(firing, `"version": "4"`, `"version": "3"`, 1)},
		"POST /v1/alertmanager/{target} 502": {path: "/v1/alertmanager/am-grp", docPath: amDoc, token: all, body: firing},
		"POST /v1/alertmanager/{target} 503": {path: "/v1/alertmanager/full", docPath: amDoc, token: all, body: firing},

		"POST /v1/messages:batch 202": {path: "/v1/messages:batch", token: all, body: `{"robot":"r4","text":"1"}` + "\n" + `{"robot":"r5","text":"2"}`},
		"POST /v1/messages:batch 400": {path: "/v1/messages:batch", token: all, body: `{"robot":"ops","text":"1"}` + "\n" + `{`},
		"POST /v1/messages:batch 401": {path: "/v1/messages:batch", body: `{"robot":"ops","text":"1"}`},
		"POST /v1/messages:batch 403": {path: "/v1/messages:batch", token: "tok-scoped", body: `{"robot":"ops","text":"1"}`},
		"POST /v1/messages:batch 413": {path: "/v1/messages:batch", token: all, body: strings.Repeat(`{"robot":"ops","text":"1"}`+"\n", 12000)},
		"POST /v1/messages:batch 422": {path: "/v1/messages:batch", token: all, body: `{"text":"1"}`},
		"POST /v1/messages:batch 429": {path: "/v1/messages:batch", token: "tok-slow", body: `{"robot":"ops","text":"1"}`},
		"POST /v1/messages:batch 502": {path: "/v1/messages:batch", token: all, body: `{"robot":"r7","text":"1"}` + "\n" + `{"robot":"full","text":"2"}`},
		"POST /v1/messages:batch 503": {path: "/v1/messages:batch", token: all, body: `{"robot":"full","text":"1"}`},
	}
	keys := make([]string, 0, len(cases))
	for k := range cases {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	require.Equal(t, doc.documented(), keys, "every documented route and status has a case, and no case is undocumented")
	// The slow token spends its burst: its requests below are over its rate.
	require.Equal(t, http.StatusAccepted, f.post(t, "/v1/messages", `{"robot":"r8","text":"hi"}`, bearer("tok-slow")...).status)

	for _, k := range keys {
		c := cases[k]
		t.Run(k, func(t *testing.T) {
			if c.method == "" {
				c.method = http.MethodPost
			}
			if c.prep != nil {
				c.prep()
			}
			hdr := c.header
			if c.token != "" {
				hdr = append(hdr, bearer(c.token)...)
			}
			r := f.do(t, c.method, c.path, c.body, hdr...)
			want, _ := strconv.Atoi(k[strings.LastIndexByte(k, ' ')+1:])
			require.Equal(t, want, r.status, "body %.300s", r.body)
			if c.docPath == "" {
				c.docPath = c.path
			}
			doc.check(t, c.method, c.docPath, c.body, r)
			ready.Store(true)
		})
	}
}
