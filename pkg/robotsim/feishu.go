package robotsim

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
)

// feishuBody is the part of a Feishu custom bot body the simulator
// checks. The timestamp may be a JSON string or number.
type feishuBody struct {
	Timestamp json.RawMessage `json:"timestamp"`
	Sign      string          `json:"sign"`
	MsgType   string          `json:"msg_type"`
	Content   *struct {
		Text string `json:"text"`
	} `json:"content"`
	Card *struct {
		Header *struct {
			Title struct {
				Content string `json:"content"`
			} `json:"title"`
		} `json:"header"`
		Elements []struct {
			Tag     string `json:"tag"`
			Content string `json:"content"`
		} `json:"elements"`
	} `json:"card"`
}

// feishuAnswer is a Feishu answer: {"code":…,"msg":…,"data":{}}.
type feishuAnswer struct {
	status int
	Code   int      `json:"code"`
	Data   struct{} `json:"data"`
	Msg    string   `json:"msg"`
}

var (
	feishuTextAt = regexp.MustCompile(`<at user_id="([^"]*)">`)
	feishuCardAt = regexp.MustCompile(`<at id=([^>\s]*)>`)
)

func (s *Sim) serveFeishu(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	if f, ok := s.takeFault(token); ok && applyFault(w, r, f) {
		return
	}
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		if body, err = readBody(r); err != nil {
			panic(http.ErrAbortHandler)
		}
	}
	a := s.feishu(r.Method, token, body)
	if a.Code != 0 {
		s.logRefusal(r.Context(), PlatformFeishu, token, a.Code, a.Msg)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if a.status == 0 {
		a.status = http.StatusOK
	}
	w.WriteHeader(a.status)
	_ = json.NewEncoder(w).Encode(a)
}

func (s *Sim) feishu(method, token string, body []byte) feishuAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.robots[token]
	if st == nil || st.robot.Platform != PlatformFeishu {
		return feishuAnswer{status: http.StatusBadRequest, Code: FeishuErrToken, Msg: feishuMsgTokenInvalid}
	}
	st.stats.Requests++
	accepted := st.stats.Accepted
	a, rec := s.feishuChecked(st, method, body)
	st.tally(s.cfg.Now(), a.Code, rec.Content, accepted)
	return a
}

func (s *Sim) feishuChecked(st *robotState, method string, body []byte) (feishuAnswer, Received) {
	bad := func(msg string) feishuAnswer {
		return feishuAnswer{status: http.StatusBadRequest, Code: FeishuErrBadRequest, Msg: msg}
	}
	if method != http.MethodPost {
		return bad("Bad Request: must be POST"), Received{}
	}
	var b feishuBody
	if err := json.Unmarshal(body, &b); err != nil {
		return bad("Bad Request: body is not valid JSON"), Received{}
	}
	rec, ok := b.message()
	if st.robot.Secret != "" {
		if msg := verify(feishuScheme, st.robot.Secret, rawString(b.Timestamp), b.Sign); msg != "" {
			st.stats.SignatureFailures++
			return feishuAnswer{Code: FeishuErrSign, Msg: FeishuMsgSign}, rec
		}
	}
	now := s.cfg.Now()
	switch s.admit(st, now) {
	case -1:
	case 1: // the per-second window
		return feishuAnswer{status: http.StatusBadRequest, Code: FeishuErrBadRequest, Msg: FeishuMsgTooMany}, rec
	default:
		return feishuAnswer{Code: FeishuErrFrequency, Msg: "frequency limited psm[lark.oapi.app_platform_runtime]appID[1500]"}, rec
	}
	if len(body) > FeishuMaxBody {
		return bad("Bad Request: request body too large"), rec
	}
	if !ok {
		return feishuAnswer{Code: FeishuErrMsgType, Msg: "params error, msg_type need"}, rec
	}
	if !containsAny(rec.Title+"\n"+rec.Content, st.robot.Keywords) {
		return feishuAnswer{Code: FeishuErrKeywords, Msg: "Key Words Not Found"}, rec
	}
	rec.At, rec.Body = now, body
	rec.MessageID = s.newMessageID()
	st.accept(rec)
	return feishuAnswer{Code: FeishuOK, Msg: "success"}, rec
}

// message extracts the message: a text's content, or a card's header
// title and markdown elements; false for an unknown or empty msg_type.
func (b *feishuBody) message() (Received, bool) {
	rec := Received{MsgType: b.MsgType}
	switch b.MsgType {
	case "text":
		if b.Content == nil || b.Content.Text == "" {
			return rec, false
		}
		rec.Content = b.Content.Text
		rec.AtUserIDs, rec.AtAll = mentions(feishuTextAt, rec.Content)
	case "interactive":
		if b.Card == nil || len(b.Card.Elements) == 0 {
			return rec, false
		}
		if b.Card.Header != nil {
			rec.Title = b.Card.Header.Title.Content
		}
		var parts []string
		for _, e := range b.Card.Elements {
			if e.Tag == "markdown" {
				parts = append(parts, e.Content)
			}
		}
		rec.Content = strings.Join(parts, "\n")
		rec.AtUserIDs, rec.AtAll = mentions(feishuCardAt, rec.Content)
	default:
		return rec, false
	}
	return rec, true
}

// mentions lists the ids an <at> pattern finds in text, "all" apart.
func mentions(re *regexp.Regexp, text string) (ids []string, all bool) {
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		if m[1] == "all" {
			all = true
		} else {
			ids = append(ids, m[1])
		}
	}
	return ids, all
}

// rawString reads a JSON string or number as its text.
func rawString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
