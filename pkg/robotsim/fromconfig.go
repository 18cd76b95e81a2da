package robotsim

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"
)

// ErrNoToken is returned by [TokenFromWebhook] for a webhook that carries
// no token where its platform puts one.
var ErrNoToken = errors.New("robotsim: no token in webhook")

// TokenFromWebhook returns the token the simulator knows a robot by, read
// from its webhook URL the way the platform reads it: DingTalk's
// access_token and WeCom's key query parameters, the last path segment
// of POPO's and Feishu's hook. The error never quotes the webhook.
func TokenFromWebhook(platform, webhook string) (string, error) {
	u, err := url.Parse(webhook)
	if err != nil {
		return "", fmt.Errorf("%w: not a URL", ErrNoToken)
	}
	var tok string
	switch platform {
	case PlatformDingTalk:
		tok = u.Query().Get("access_token")
	case PlatformWeCom:
		tok = u.Query().Get("key")
	case PlatformPOPO, PlatformFeishu:
		if strings.Contains(u.Path, "/hook/") {
			tok = path.Base(strings.TrimRight(u.Path, "/"))
		}
	default:
		return "", fmt.Errorf("%w: unknown platform %q", ErrInvalidRobot, platform)
	}
	if tok == "" || tok == "hook" {
		return "", fmt.Errorf("%w (%s)", ErrNoToken, platform)
	}
	return tok, nil
}

// Totals sums the counters of every robot, as GET /_sim/stats serves them.
type Totals struct {
	// Robots is the number of robots; Active those that received a request.
	Robots int `json:"robots"`
	Active int `json:"active"`
	// Stats sums every robot's counters.
	Stats Stats `json:"stats"`
	// FirstAccepted and LastAccepted span every acceptance; nil before the first.
	FirstAccepted *time.Time `json:"firstAccepted,omitempty"`
	LastAccepted  *time.Time `json:"lastAccepted,omitempty"`
	// Anomalies lists (up to 100, sorted) the tokens of robots with a
	// breach, a duplicate, a repeated content or a signature failure.
	Anomalies []string `json:"anomalies,omitempty"`
}

// maxAnomalies bounds [Totals.Anomalies].
const maxAnomalies = 100

// Totals returns the counters of every robot summed.
func (s *Sim) Totals() Totals {
	var t Totals
	var first, last time.Time
	for _, rs := range s.Robots() {
		t.Robots++
		st := rs.Stats
		if st.Requests > 0 {
			t.Active++
		}
		t.Stats.add(st)
		if rs.FirstAccepted != nil && (first.IsZero() || rs.FirstAccepted.Before(first)) {
			first = *rs.FirstAccepted
		}
		if rs.LastAccepted != nil && rs.LastAccepted.After(last) {
			last = *rs.LastAccepted
		}
		if (st.Breaches > 0 || st.Duplicates > 0 || st.RepeatedContent > 0 || st.SignatureFailures > 0) &&
			len(t.Anomalies) < maxAnomalies {
			t.Anomalies = append(t.Anomalies, rs.Token)
		}
	}
	if !first.IsZero() {
		t.FirstAccepted, t.LastAccepted = &first, &last
	}
	return t
}

func (st *Stats) add(o Stats) {
	st.Requests += o.Requests
	st.Accepted += o.Accepted
	st.Rejected += o.Rejected
	st.Breaches += o.Breaches
	st.DuringBan += o.DuringBan
	st.Duplicates += o.Duplicates
	st.SignatureFailures += o.SignatureFailures
	st.Faulted += o.Faulted
	st.RepeatedContent += o.RepeatedContent
}
