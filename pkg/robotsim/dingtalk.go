package robotsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// dingTalkBody is the part of a DingTalk robot body the simulator checks.
type dingTalkBody struct {
	MsgType string `json:"msgtype"`
	MsgUUID string `json:"msgUuid"`
	Text    *struct {
		Content string `json:"content"`
	} `json:"text"`
	Markdown *struct {
		Title string `json:"title"`
		Text  string `json:"text"`
	} `json:"markdown"`
	Link *struct {
		Title      string `json:"title"`
		Text       string `json:"text"`
		MessageURL string `json:"messageUrl"`
		PicURL     string `json:"picUrl"`
	} `json:"link"`
	ActionCard *struct {
		Title       string `json:"title"`
		Text        string `json:"text"`
		SingleTitle string `json:"singleTitle"`
		SingleURL   string `json:"singleURL"`
		Btns        []struct {
			Title     string `json:"title"`
			ActionURL string `json:"actionURL"`
		} `json:"btns"`
	} `json:"actionCard"`
	FeedCard *struct {
		Links []struct {
			Title      string `json:"title"`
			MessageURL string `json:"messageURL"`
			PicURL     string `json:"picURL"`
		} `json:"links"`
	} `json:"feedCard"`
	At *struct {
		AtMobiles []string `json:"atMobiles"`
		AtUserIDs []string `json:"atUserIds"`
		IsAtAll   bool     `json:"isAtAll"`
	} `json:"at"`
}

type apiAnswer struct {
	Data    *popoData `json:"data,omitempty"`
	ErrCode int       `json:"errcode"`
	ErrMsg  string    `json:"errmsg"`
}

type popoData struct {
	MsgID string `json:"msgId"`
}

func writeAnswer(w http.ResponseWriter, a apiAnswer) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(a)
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// readBody reads at most maxRead+1 bytes of the body.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxRead+1))
	if err != nil {
		return nil, fmt.Errorf("robotsim: read body: %w", err)
	}
	return b, nil
}

func (s *Sim) serveDingTalk(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	token := q.Get("access_token")
	if r.URL.Path == sessionPath {
		// An enterprise robot's session webhook: the session is the token.
		token = q.Get("session")
	}
	if f, ok := s.takeFault(token); ok && applyFault(w, r, f) {
		return
	}
	var body []byte
	if r.Method == http.MethodPost && isJSON(r.Header.Get("Content-Type")) {
		var err error
		if body, err = readBody(r); err != nil {
			panic(http.ErrAbortHandler) // the client went away
		}
	}
	a := s.dingTalk(r.Method, r.Header.Get("Content-Type"), token, q.Get("timestamp"), q.Get("sign"), body)
	if a.ErrCode != 0 {
		s.logRefusal(r.Context(), PlatformDingTalk, token, a.ErrCode, a.ErrMsg)
	}
	writeAnswer(w, a)
}

// dingTalk decides the answer to one DingTalk request.
func (s *Sim) dingTalk(method, contentType, token, timestamp, sign string, body []byte) apiAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.robots[token]
	if st == nil || st.robot.Platform != PlatformDingTalk {
		return apiAnswer{ErrCode: DingTalkErrTokenNotExist, ErrMsg: "token is not exist"}
	}
	st.stats.Requests++
	accepted, dups := st.stats.Accepted, st.stats.Duplicates
	a := s.dingTalkChecked(st, method, contentType, timestamp, sign, body)
	req := Request{At: s.cfg.Now(), ErrCode: a.ErrCode, Outcome: RequestRefused}
	switch {
	case a.ErrCode != 0:
		st.stats.Rejected++
	case st.stats.Accepted > accepted:
		req.Outcome = RequestAccepted
	case st.stats.Duplicates > dups:
		req.Outcome = RequestDuplicate
	}
	if !st.countOnly {
		var b dingTalkBody
		if json.Unmarshal(body, &b) == nil {
			req.MsgUUID = b.MsgUUID
			if m, err := b.message(); err == nil {
				req.Content = m.rec.Content
			}
		}
		st.record(req)
	}
	return a
}

func (s *Sim) dingTalkChecked(st *robotState, method, contentType, timestamp, sign string, body []byte) apiAnswer {
	if method != http.MethodPost {
		return apiAnswer{ErrCode: DingTalkErrMustPost, ErrMsg: "must be POST"}
	}
	if !isJSON(contentType) {
		return apiAnswer{ErrCode: DingTalkErrContentType, ErrMsg: "content type must be application/json"}
	}
	if st.robot.Secret != "" {
		if msg := verify(dingTalkScheme, st.robot.Secret, timestamp, sign); msg != "" {
			st.stats.SignatureFailures++
			return apiAnswer{ErrCode: DingTalkErrSecurity, ErrMsg: msg}
		}
	}
	now := s.cfg.Now()
	if s.admit(st, now) != -1 {
		return apiAnswer{ErrCode: DingTalkErrThrottled,
			ErrMsg: fmt.Sprintf("send too fast, exceed %d times per minute", st.limit)}
	}
	if len(body) > maxRead {
		return apiAnswer{ErrCode: DingTalkErrTooLong, ErrMsg: "message too long, exceed 20000 bytes"}
	}
	var b dingTalkBody
	if err := json.Unmarshal(body, &b); err != nil {
		return apiAnswer{ErrCode: DingTalkErrMissingParam, ErrMsg: "missing parameter: body is not valid JSON"}
	}
	m, err := b.message()
	if errors.Is(err, errUnsupported) {
		return apiAnswer{ErrCode: DingTalkErrUnsupportedType, ErrMsg: "unsupported msgtype"}
	}
	if err != nil {
		return apiAnswer{ErrCode: DingTalkErrMissingParam, ErrMsg: "missing parameter: " + err.Error()}
	}
	if len(body) > DingTalkMaxBody {
		return apiAnswer{ErrCode: DingTalkErrTooLong, ErrMsg: "message too long, exceed 20000 bytes"}
	}
	if !containsAny(m.keywordText, st.robot.Keywords) {
		return apiAnswer{ErrCode: DingTalkErrSecurity, ErrMsg: DingTalkMsgKeywords}
	}
	if b.MsgUUID != "" {
		if i, seen := st.uuids[b.MsgUUID]; seen {
			st.stats.Duplicates++
			if i < len(st.received) {
				st.received[i].Repeats++
			}
			return apiAnswer{ErrCode: DingTalkOK, ErrMsg: "ok"}
		}
		st.uuids[b.MsgUUID] = len(st.received)
	}
	rec := m.rec
	rec.At = now
	rec.MsgUUID = b.MsgUUID
	rec.Body = body
	if b.At != nil {
		rec.AtMobiles = b.At.AtMobiles
		rec.AtUserIDs = b.At.AtUserIDs
		rec.AtAll = b.At.IsAtAll
	}
	st.accept(rec)
	return apiAnswer{ErrCode: DingTalkOK, ErrMsg: "ok"}
}

var errUnsupported = errors.New("unsupported msgtype")

type parsed struct {
	rec         Received
	keywordText string
}

// message checks the fields of the body's msgtype and extracts the message.
func (b *dingTalkBody) message() (parsed, error) {
	var p parsed
	p.rec.MsgType = b.MsgType
	switch b.MsgType {
	case "text":
		if b.Text == nil || b.Text.Content == "" {
			return p, errors.New("text.content")
		}
		p.rec.Content = b.Text.Content
		p.keywordText = b.Text.Content
	case "markdown":
		if b.Markdown == nil || b.Markdown.Title == "" || b.Markdown.Text == "" {
			return p, errors.New("markdown.title and markdown.text")
		}
		p.rec.Title, p.rec.Content = b.Markdown.Title, b.Markdown.Text
	case "link":
		if b.Link == nil || b.Link.Title == "" || b.Link.Text == "" || b.Link.MessageURL == "" {
			return p, errors.New("link.title, link.text and link.messageUrl")
		}
		p.rec.Title, p.rec.Content = b.Link.Title, b.Link.Text
	case "actionCard":
		c := b.ActionCard
		if c == nil || c.Title == "" || c.Text == "" {
			return p, errors.New("actionCard.title and actionCard.text")
		}
		single := c.SingleTitle != "" && c.SingleURL != ""
		if !single && len(c.Btns) == 0 {
			return p, errors.New("actionCard.singleTitle and singleURL, or btns")
		}
		for _, btn := range c.Btns {
			if btn.Title == "" || btn.ActionURL == "" {
				return p, errors.New("actionCard.btns title and actionURL")
			}
		}
		p.rec.Title, p.rec.Content = c.Title, c.Text
	case "feedCard":
		if b.FeedCard == nil || len(b.FeedCard.Links) == 0 {
			return p, errors.New("feedCard.links")
		}
		titles := make([]string, 0, len(b.FeedCard.Links))
		for _, l := range b.FeedCard.Links {
			if l.Title == "" || l.MessageURL == "" {
				return p, errors.New("feedCard.links title and messageURL")
			}
			titles = append(titles, l.Title)
		}
		p.rec.Content = strings.Join(titles, "\n")
		p.keywordText = p.rec.Content
	default:
		return p, errUnsupported
	}
	if p.keywordText == "" {
		p.keywordText = p.rec.Title + "\n" + p.rec.Content
	}
	return p, nil
}
