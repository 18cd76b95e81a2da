package robotsim

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// popoBody is a POPO robot request body. The timestamp is read whether it
// is sent as a JSON string or a number.
type popoBody struct {
	Message   *string         `json:"message"`
	Timestamp json.RawMessage `json:"timestamp"`
	SignData  string          `json:"signData"`
}

func (b popoBody) timestamp() string {
	var s string
	if json.Unmarshal(b.Timestamp, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(b.Timestamp, &n) == nil {
		return n.String()
	}
	return ""
}

func (s *Sim) servePOPO(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if f, ok := s.takeFault(id); ok && applyFault(w, r, f) {
		return
	}
	var body []byte
	if r.Method == http.MethodPost && isJSON(r.Header.Get("Content-Type")) {
		var err error
		if body, err = readBody(r); err != nil {
			panic(http.ErrAbortHandler)
		}
	}
	a := s.popo(r.Method, r.Header.Get("Content-Type"), id, body)
	if a.ErrCode != 0 {
		s.logRefusal(r.Context(), PlatformPOPO, id, a.ErrCode, a.ErrMsg)
	}
	writeAnswer(w, a)
}

func (s *Sim) popo(method, contentType, id string, body []byte) apiAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.robots[id]
	if st == nil || st.robot.Platform != PlatformPOPO {
		return apiAnswer{ErrCode: POPOErrRobotNotFound, ErrMsg: "robot not found"}
	}
	st.stats.Requests++
	a := s.popoChecked(st, method, contentType, body)
	req := Request{At: s.cfg.Now(), ErrCode: a.ErrCode, Outcome: RequestAccepted}
	if a.ErrCode != 0 {
		st.stats.Rejected++
		req.Outcome = RequestRefused
	}
	if !st.countOnly {
		var b popoBody
		if json.Unmarshal(body, &b) == nil && b.Message != nil {
			req.Content = *b.Message
		}
		st.record(req)
	}
	return a
}

func (s *Sim) popoChecked(st *robotState, method, contentType string, body []byte) apiAnswer {
	if method != http.MethodPost {
		return apiAnswer{ErrCode: POPOErrBadRequest, ErrMsg: "must be POST"}
	}
	if !isJSON(contentType) {
		return apiAnswer{ErrCode: POPOErrBadRequest, ErrMsg: "content type must be application/json"}
	}
	if len(body) > maxRead {
		return apiAnswer{ErrCode: POPOErrBadRequest, ErrMsg: "request body too large"}
	}
	var b popoBody
	if err := json.Unmarshal(body, &b); err != nil {
		return apiAnswer{ErrCode: POPOErrBadRequest, ErrMsg: "body is not valid JSON"}
	}
	if st.robot.Secret != "" {
		if msg := verify(popoScheme, st.robot.Secret, b.timestamp(), b.SignData); msg != "" {
			st.stats.SignatureFailures++
			return apiAnswer{ErrCode: POPOErrSignature, ErrMsg: msg}
		}
	}
	now := s.cfg.Now()
	if s.admit(st, now) != -1 {
		return apiAnswer{ErrCode: POPOErrThrottled,
			ErrMsg: fmt.Sprintf("send too fast, robot banned for %s", s.cfg.Ban)}
	}
	if b.Message == nil || *b.Message == "" {
		return apiAnswer{ErrCode: POPOErrBadRequest, ErrMsg: "message is required"}
	}
	if !containsAny(*b.Message, st.robot.Keywords) {
		return apiAnswer{ErrCode: POPOErrKeywords, ErrMsg: "keywords not in content"}
	}
	id := s.newMessageID()
	st.accept(Received{At: now, MsgType: "text", Content: *b.Message, Body: body, MessageID: id})
	return apiAnswer{Data: &popoData{MsgID: id}, ErrCode: POPOOK, ErrMsg: "ok"}
}
