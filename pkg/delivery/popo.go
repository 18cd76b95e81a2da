package delivery

import (
	"fmt"
	"strings"
	"time"

	"github.com/botrelay/botrelay/pkg/envelope"
	"github.com/botrelay/botrelay/pkg/signer"
)

// popoPlatform is the NetEase POPO custom robot. POPO publishes no error
// list and no size limit: its rules mirror the simulator's codes and are
// configurable.
var popoPlatform = Platform{
	Name:         PlatformPOPO,
	Title:        "POPO",
	Webhook:      "https://open.popo.netease.com/open-apis/robots/v1/hook/{id}",
	CredentialIn: "hook id in the path",
	Limits:       []Window{{Max: 60, Window: time.Minute}},
	Margin:       5 * time.Second,
	CoolOff:      10 * time.Minute,
	Size:         envelope.Limits{},
	Signed:       true,
	Keywords:     true,

	credential: hookCredential,
	render: func(env *envelope.Envelope, robot Robot, now time.Time) (outgoing, error) {
		b, err := renderPOPO(env, robot.Secret, now)
		return outgoing{url: robot.Webhook, body: b}, err
	},
	keywordText: popoMessage,
	rules:       popoRules,
	codeFields:  errCodeFields,
	msgFields:   errMsgFields,
}

// popoBody is the JSON POPO's custom robot accepts; timestamp and signData
// are present only when the robot has a secret.
type popoBody struct {
	Message   string `json:"message"`
	Timestamp string `json:"timestamp,omitempty"`
	SignData  string `json:"signData,omitempty"`
}

// renderPOPO builds the POPO body of env, signed at now when secret is set.
func renderPOPO(env *envelope.Envelope, secret string, now time.Time) (*popoBody, error) {
	text, err := popoMessage(env)
	if err != nil {
		return nil, err
	}
	b := &popoBody{Message: text}
	if secret != "" {
		b.Timestamp, b.SignData = signer.POPO(secret, now)
	}
	return b, nil
}

// popoMessage is the POPO text of env: [envelope.Message.PlainText], then
// one "[img]url[/img]" line per picture (POPO's inline image syntax; the
// plain text leaves pictures out), then one "@…" line per mention not
// already in it ("@all" for [envelope.At.All]; POPO's mention syntax is not
// publicly documented).
func popoMessage(env *envelope.Envelope) (string, error) {
	m := env.Message
	text := m.PlainText()
	if m.Kind() == "" {
		return "", fmt.Errorf("%w: set exactly one message kind", ErrInvalidMessage)
	}
	var pics []string
	switch {
	case m.Link != nil:
		pics = append(pics, m.Link.PicURL)
	case m.FeedCard != nil:
		for _, l := range m.FeedCard.Links {
			pics = append(pics, l.PicURL)
		}
	}
	for _, p := range pics {
		if p != "" {
			text += "\n[img]" + p + "[/img]"
		}
	}
	text = withMentions(text, env.At, "\n")
	if env.At != nil && env.At.All && !strings.Contains(text, "@all") {
		text += "\n@all"
	}
	return text, nil
}

// withMentions appends sep+"@id" to content for every mentioned mobile and
// user id whose "@id" is not already in it.
func withMentions(content string, at *envelope.At, sep string) string {
	if at == nil {
		return content
	}
	for _, ids := range [][]string{at.Mobiles, at.UserIDs} {
		for _, id := range ids {
			if id == "" {
				continue
			}
			if tag := "@" + id; !strings.Contains(content, tag) {
				content += sep + tag
			}
		}
	}
	return content
}
