package robotsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// weComBody is the part of a WeCom group robot body the simulator checks.
type weComBody struct {
	MsgType string `json:"msgtype"`
	Text    *struct {
		Content             string   `json:"content"`
		MentionedList       []string `json:"mentioned_list"`
		MentionedMobileList []string `json:"mentioned_mobile_list"`
	} `json:"text"`
	Markdown *struct {
		Content string `json:"content"`
	} `json:"markdown"`
	News *struct {
		Articles []struct {
			Title string `json:"title"`
			URL   string `json:"url"`
		} `json:"articles"`
	} `json:"news"`
	TemplateCard *struct {
		CardType  string `json:"card_type"`
		MainTitle struct {
			Title string `json:"title"`
		} `json:"main_title"`
		SubTitleText string `json:"sub_title_text"`
		CardAction   struct {
			Type int    `json:"type"`
			URL  string `json:"url"`
		} `json:"card_action"`
	} `json:"template_card"`
}

func (s *Sim) serveWeCom(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	if f, ok := s.takeFault(key); ok && applyFault(w, r, f) {
		return
	}
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		if body, err = readBody(r); err != nil {
			panic(http.ErrAbortHandler)
		}
	}
	a := s.weCom(r.Method, key, body)
	if a.ErrCode != 0 {
		s.logRefusal(r.Context(), PlatformWeCom, key, a.ErrCode, a.ErrMsg)
	}
	writeAnswer(w, a)
}

func (s *Sim) weCom(method, key string, body []byte) apiAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.robots[key]
	if st == nil || st.robot.Platform != PlatformWeCom {
		return apiAnswer{ErrCode: WeComErrInvalidURL, ErrMsg: "invalid webhook url, hint: [robotsim]"}
	}
	st.stats.Requests++
	accepted := st.stats.Accepted
	a, rec := s.weComChecked(st, method, body)
	st.tally(s.cfg.Now(), a.ErrCode, rec.Content, accepted)
	return a
}

func (s *Sim) weComChecked(st *robotState, method string, body []byte) (apiAnswer, Received) {
	if method != http.MethodPost {
		return apiAnswer{ErrCode: WeComErrBadBody, ErrMsg: "must be POST"}, Received{}
	}
	var b weComBody
	if err := json.Unmarshal(body, &b); err != nil {
		return apiAnswer{ErrCode: WeComErrBadBody, ErrMsg: "invalid json"}, Received{}
	}
	rec, a := b.message()
	now := s.cfg.Now()
	if s.admit(st, now) != -1 {
		return apiAnswer{ErrCode: WeComErrFrequency, ErrMsg: weComMsgFrequency}, rec
	}
	if a.ErrCode != 0 {
		return a, rec
	}
	rec.At, rec.Body = now, body
	rec.MessageID = s.newMessageID()
	st.accept(rec)
	return apiAnswer{ErrCode: WeComOK, ErrMsg: "ok"}, rec
}

// message extracts and checks the message (types, sizes, articles).
func (b *weComBody) message() (Received, apiAnswer) {
	rec := Received{MsgType: b.MsgType}
	tooLong := func(field string, max int) apiAnswer {
		return apiAnswer{ErrCode: WeComErrTooLong, ErrMsg: fmt.Sprintf("%s exceed max length %d", field, max)}
	}
	missing := func(field string) apiAnswer {
		return apiAnswer{ErrCode: WeComErrBadBody, ErrMsg: "missing " + field}
	}
	switch b.MsgType {
	case "text":
		if b.Text == nil || b.Text.Content == "" {
			return rec, missing("text.content")
		}
		rec.Content = b.Text.Content
		rec.AtMobiles = b.Text.MentionedMobileList
		for _, id := range b.Text.MentionedList {
			if id == "@all" {
				rec.AtAll = true
			} else {
				rec.AtUserIDs = append(rec.AtUserIDs, id)
			}
		}
		if len(rec.Content) > WeComMaxText {
			return rec, tooLong("text.content", WeComMaxText)
		}
	case "markdown":
		if b.Markdown == nil || b.Markdown.Content == "" {
			return rec, missing("markdown.content")
		}
		rec.Content = b.Markdown.Content
		for _, part := range strings.Split(rec.Content, "<@")[1:] {
			if i := strings.IndexByte(part, '>'); i > 0 {
				rec.AtUserIDs = append(rec.AtUserIDs, part[:i])
			}
		}
		if len(rec.Content) > WeComMaxMarkdown {
			return rec, tooLong("markdown.content", WeComMaxMarkdown)
		}
	case "news":
		if b.News == nil || len(b.News.Articles) == 0 || len(b.News.Articles) > WeComMaxArticles {
			return rec, apiAnswer{ErrCode: WeComErrBadBody, ErrMsg: "news.articles: 1 to 8 articles"}
		}
		var titles []string
		for _, a := range b.News.Articles {
			if a.Title == "" || a.URL == "" {
				return rec, missing("news.articles title and url")
			}
			titles = append(titles, a.Title)
		}
		rec.Title = titles[0]
		rec.Content = strings.Join(titles, "\n")
	case "template_card":
		c := b.TemplateCard
		if c == nil || c.CardType != "text_notice" || c.MainTitle.Title == "" || c.CardAction.URL == "" {
			return rec, missing("template_card text_notice main_title and card_action")
		}
		rec.Title, rec.Content = c.MainTitle.Title, c.SubTitleText
	default:
		return rec, apiAnswer{ErrCode: WeComErrInvalidType, ErrMsg: "invalid message type"}
	}
	return rec, apiAnswer{}
}

// tally records one checked request of a Feishu or WeCom robot in st's
// stats and request log: accepted when it was taken (Accepted grew from
// acceptedBefore), else refused (counted as rejected when errCode is set).
func (st *robotState) tally(at time.Time, errCode int, content string, acceptedBefore int) {
	req := Request{At: at, ErrCode: errCode, Outcome: RequestRefused, Content: content}
	switch {
	case errCode != 0:
		st.stats.Rejected++
	case st.stats.Accepted > acceptedBefore:
		req.Outcome = RequestAccepted
	}
	st.record(req)
}
