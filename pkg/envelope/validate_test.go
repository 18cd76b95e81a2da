package envelope

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// valid returns a valid envelope carrying msg.
func valid(msg Message) *Envelope {
	return &Envelope{
		V:         Version,
		ID:        "01hx.id:part-2_b",
		Robot:     "ops-alerts_1",
		Message:   msg,
		CreatedAt: t0,
	}
}

func textMsg() Message { return Message{Text: &Text{Content: "hello"}} }

func TestValidateValid(t *testing.T) {
	exp := t0.Add(time.Minute)
	labels := map[string]string{}
	for i := range MaxLabels {
		labels[fmt.Sprintf("k%02d", i)] = "v"
	}
	labels[strings.Repeat("k", MaxLabelKeyLen-3)+"max"] = "v"
	delete(labels, "k00")
	labels["k01"] = strings.Repeat("v", MaxLabelValueBytes)
	tests := []struct {
		name string
		e    *Envelope
	}{
		{"text", valid(textMsg())},
		{"version zero", func() *Envelope { e := valid(textMsg()); e.V = 0; return e }()},
		{"markdown", valid(Message{Markdown: &Markdown{Title: "t", Text: "# x"}})},
		{"link", valid(Message{Link: &Link{Title: "t", Text: "x", MessageURL: "https://e.com/a?b=c", PicURL: "http://e.com/p.png"}})},
		{"actionCard single", valid(Message{ActionCard: &ActionCard{Title: "t", Text: "x", SingleTitle: "Open", SingleURL: "https://e.com"}})},
		{"actionCard btns", valid(Message{ActionCard: &ActionCard{Title: "t", Text: "x", BtnOrientation: "1",
			Buttons: []Button{{Title: "A", ActionURL: "https://e.com/a"}, {Title: "B", ActionURL: "https://e.com/b"}}}})},
		{"actionCard orientation 0", valid(Message{ActionCard: &ActionCard{Title: "t", Text: "x", BtnOrientation: "0",
			Buttons: []Button{{Title: "A", ActionURL: "https://e.com/a"}}}})},
		{"feedCard", valid(Message{FeedCard: &FeedCard{Links: []FeedLink{{Title: "a", MessageURL: "https://e.com/a", PicURL: "https://e.com/p"}}}})},
		{"id and robot at max length", func() *Envelope {
			e := valid(textMsg())
			e.ID, e.Robot = strings.Repeat("a", MaxIDLen), strings.Repeat("r", MaxRobotLen)
			return e
		}()},
		{"expires after created", func() *Envelope { e := valid(textMsg()); e.ExpiresAt = &exp; return e }()},
		{"max labels", func() *Envelope { e := valid(textMsg()); e.Labels = labels; return e }()},
		{"mentions", func() *Envelope {
			e := valid(Message{Text: &Text{Content: "@138 hi"}})
			e.At = &At{Mobiles: []string{"138"}, UserIDs: []string{"u1"}, All: true}
			return e
		}()},
		{"content exactly at limit", func() *Envelope {
			e := valid(Message{Text: &Text{Content: "x"}})
			overhead := contentSize(e.Message, nil) - 1
			e.Message.Text.Content = strings.Repeat("x", MaxContentBytes-FramingReserve-overhead)
			return e
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.e.Validate())
		})
	}
}

func TestValidateInvalid(t *testing.T) {
	before := t0.Add(-time.Second)
	tests := []struct {
		name   string
		mutate func(e *Envelope)
		want   []string // each must appear in the error text
	}{
		{"future version", func(e *Envelope) { e.V = 2 }, []string{"envelope: v: unsupported version 2"}},
		{"negative version", func(e *Envelope) { e.V = -1 }, []string{"envelope: v: unsupported version -1"}},
		{"id missing", func(e *Envelope) { e.ID = "" }, []string{"envelope: id: required"}},
		{"id too long", func(e *Envelope) { e.ID = strings.Repeat("a", MaxIDLen+1) }, []string{"envelope: id: 129 characters, limit 128"}},
		{"id bad char", func(e *Envelope) { e.ID = "ab/c" }, []string{"envelope: id: invalid character at offset 2"}},
		{"id space", func(e *Envelope) { e.ID = "a b" }, []string{"envelope: id: invalid character at offset 1"}},
		{"robot missing", func(e *Envelope) { e.Robot = "" }, []string{"envelope: robot: required"}},
		{"robot too long", func(e *Envelope) { e.Robot = strings.Repeat("r", MaxRobotLen+1) }, []string{"envelope: robot: 65 characters, limit 64"}},
		{"robot dot (subject separator)", func(e *Envelope) { e.Robot = "ops.alerts" }, []string{"envelope: robot: invalid character at offset 3"}},
		{"robot wildcard", func(e *Envelope) { e.Robot = "ops*" }, []string{"envelope: robot: invalid character at offset 3"}},
		{"robot url", func(e *Envelope) { e.Robot = "https://oapi.dingtalk.com" }, []string{"envelope: robot: invalid character at offset 5"}},
		{"no kind", func(e *Envelope) { e.Message = Message{} }, []string{"envelope: message: no message kind set"}},
		{"several kinds", func(e *Envelope) {
			e.Message.Markdown = &Markdown{Title: "t", Text: "x"}
			e.Message.FeedCard = &FeedCard{Links: []FeedLink{{Title: "a", MessageURL: "https://e.com"}}}
		}, []string{"envelope: message: several message kinds set (text, markdown, feedCard)"}},
		{"text content", func(e *Envelope) { e.Message.Text.Content = " \n" }, []string{"envelope: message.text.content: required"}},
		{"markdown title", func(e *Envelope) { e.Message = Message{Markdown: &Markdown{Text: "x"}} },
			[]string{"envelope: message.markdown.title: required"}},
		{"markdown text", func(e *Envelope) { e.Message = Message{Markdown: &Markdown{Title: "t"}} },
			[]string{"envelope: message.markdown.text: required"}},
		{"link all missing", func(e *Envelope) { e.Message = Message{Link: &Link{}} }, []string{
			"envelope: message.link.title: required",
			"envelope: message.link.text: required",
			"envelope: message.link.messageUrl: required",
		}},
		{"link bad scheme", func(e *Envelope) {
			e.Message = Message{Link: &Link{Title: "t", Text: "x", MessageURL: "ftp://e.com/f"}}
		}, []string{`envelope: message.link.messageUrl: scheme must be http or https, not "ftp"`}},
		{"link relative", func(e *Envelope) {
			e.Message = Message{Link: &Link{Title: "t", Text: "x", MessageURL: "/relative"}}
		}, []string{`envelope: message.link.messageUrl: scheme must be http or https, not ""`}},
		{"link no host", func(e *Envelope) {
			e.Message = Message{Link: &Link{Title: "t", Text: "x", MessageURL: "https:///path"}}
		}, []string{"envelope: message.link.messageUrl: URL has no host"}},
		{"link unparsable", func(e *Envelope) {
			e.Message = Message{Link: &Link{Title: "t", Text: "x", MessageURL: "https://e.com/%zz"}}
		}, []string{"envelope: message.link.messageUrl: not a valid URL"}},
		{"link bad pic", func(e *Envelope) {
			e.Message = Message{Link: &Link{Title: "t", Text: "x", MessageURL: "https://e.com", PicURL: "javascript:alert(1)"}}
		}, []string{`envelope: message.link.picUrl: scheme must be http or https, not "javascript"`}},
		{"actionCard title text", func(e *Envelope) {
			e.Message = Message{ActionCard: &ActionCard{SingleTitle: "a", SingleURL: "https://e.com"}}
		}, []string{"envelope: message.actionCard.title: required", "envelope: message.actionCard.text: required"}},
		{"actionCard no button", func(e *Envelope) {
			e.Message = Message{ActionCard: &ActionCard{Title: "t", Text: "x"}}
		}, []string{"envelope: message.actionCard.btns: a button required"}},
		{"actionCard both", func(e *Envelope) {
			e.Message = Message{ActionCard: &ActionCard{Title: "t", Text: "x", SingleTitle: "a", SingleURL: "https://e.com",
				Buttons: []Button{{Title: "b", ActionURL: "https://e.com"}}}}
		}, []string{"envelope: message.actionCard.btns: singleTitle/singleURL and btns are mutually exclusive"}},
		{"actionCard single url missing", func(e *Envelope) {
			e.Message = Message{ActionCard: &ActionCard{Title: "t", Text: "x", SingleTitle: "a"}}
		}, []string{"envelope: message.actionCard.singleURL: required"}},
		{"actionCard single title missing", func(e *Envelope) {
			e.Message = Message{ActionCard: &ActionCard{Title: "t", Text: "x", SingleURL: "https://e.com"}}
		}, []string{"envelope: message.actionCard.singleTitle: required"}},
		{"actionCard single bad url", func(e *Envelope) {
			e.Message = Message{ActionCard: &ActionCard{Title: "t", Text: "x", SingleTitle: "a", SingleURL: "e.com"}}
		}, []string{"envelope: message.actionCard.singleURL: scheme must be http or https"}},
		{"actionCard button fields", func(e *Envelope) {
			e.Message = Message{ActionCard: &ActionCard{Title: "t", Text: "x",
				Buttons: []Button{{Title: "ok", ActionURL: "https://e.com"}, {}}}}
		}, []string{"envelope: message.actionCard.btns[1].title: required", "envelope: message.actionCard.btns[1].actionURL: required"}},
		{"actionCard orientation", func(e *Envelope) {
			e.Message = Message{ActionCard: &ActionCard{Title: "t", Text: "x", BtnOrientation: "2",
				Buttons: []Button{{Title: "ok", ActionURL: "https://e.com"}}}}
		}, []string{`envelope: message.actionCard.btnOrientation: must be "0" (vertical) or "1" (horizontal), not "2"`}},
		{"feedCard empty", func(e *Envelope) { e.Message = Message{FeedCard: &FeedCard{}} },
			[]string{"envelope: message.feedCard.links: at least one link required"}},
		{"feedCard link fields", func(e *Envelope) {
			e.Message = Message{FeedCard: &FeedCard{Links: []FeedLink{
				{Title: "a", MessageURL: "https://e.com"},
				{PicURL: "ftp://e.com/p"},
			}}}
		}, []string{
			"envelope: message.feedCard.links[1].title: required",
			"envelope: message.feedCard.links[1].messageURL: required",
			`envelope: message.feedCard.links[1].picURL: scheme must be http or https, not "ftp"`,
		}},
		{"mention empty", func(e *Envelope) { e.At = &At{Mobiles: []string{"1", ""}, UserIDs: []string{""}} },
			[]string{"envelope: at.mobiles[1]: required", "envelope: at.userIds[0]: required"}},
		{"created missing", func(e *Envelope) { e.CreatedAt = time.Time{} }, []string{"envelope: created_at: required"}},
		{"expires before created", func(e *Envelope) { e.ExpiresAt = &before }, []string{"envelope: expires_at: must be after created_at"}},
		{"expires equal created", func(e *Envelope) { e.ExpiresAt = &t0 }, []string{"envelope: expires_at: must be after created_at"}},
		{"too many labels", func(e *Envelope) {
			e.Labels = map[string]string{}
			for i := range MaxLabels + 1 {
				e.Labels[fmt.Sprint(i)] = ""
			}
		}, []string{"envelope: labels: 33 labels, limit 32"}},
		{"empty label key", func(e *Envelope) { e.Labels = map[string]string{"": "x"} }, []string{`envelope: labels[""]: empty key`}},
		{"long label key", func(e *Envelope) { e.Labels = map[string]string{strings.Repeat("é", MaxLabelKeyLen+1): "x"} },
			[]string{"key of 65 characters, limit 64"}},
		{"long label value", func(e *Envelope) { e.Labels = map[string]string{"team": strings.Repeat("v", MaxLabelValueBytes+1)} },
			[]string{`envelope: labels["team"]: value of 1025 bytes, limit 1024`}},
		{"all at once", func(e *Envelope) { e.ID, e.Robot, e.CreatedAt = "", "", time.Time{} },
			[]string{"envelope: id: required", "envelope: robot: required", "envelope: created_at: required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid(textMsg())
			tt.mutate(e)
			err := e.Validate()
			require.Error(t, err)
			require.ErrorIs(t, err, ErrInvalid)
			require.NotErrorIs(t, err, ErrTooLarge)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			// One problem per line, and exactly the ones expected.
			require.Len(t, strings.Split(err.Error(), "\n"), len(tt.want), err.Error())
			var fe *FieldError
			require.ErrorAs(t, err, &fe)
		})
	}
}

func TestValidateTooLarge(t *testing.T) {
	tests := []struct {
		name string
		e    *Envelope
		size string
	}{
		{"text", valid(Message{Text: &Text{Content: strings.Repeat("x", MaxContentBytes)}}), "20023 bytes"},
		{"markdown multibyte", valid(Message{Markdown: &Markdown{Title: "t", Text: strings.Repeat("字", 7000)}}), "21036 bytes"},
		{"one byte over", valid(Message{Text: &Text{Content: strings.Repeat("x", MaxContentBytes-FramingReserve-22)}}), "19745 bytes"},
		{"mentions count twice", func() *Envelope {
			e := valid(Message{Text: &Text{Content: strings.Repeat("x", MaxContentBytes-FramingReserve-60)}})
			e.At = &At{Mobiles: []string{"13800000000"}} // {"mobiles":["13800000000"]}: 27 bytes
			return e
		}(), "19761 bytes"}, // 19734, under the limit, with the mentions counted once
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.e.Validate()
			require.ErrorIs(t, err, ErrTooLarge)
			require.ErrorIs(t, err, ErrInvalid)
			require.Contains(t, err.Error(), "envelope: message: too large: "+tt.size+" (content and mentions), limit 19744 (20000 less 256 for the platform's framing)")
		})
	}
}

func TestValidateNil(t *testing.T) {
	var e *Envelope
	require.ErrorIs(t, e.Validate(), ErrInvalid)
}

func TestFieldErrorIs(t *testing.T) {
	err := error(&FieldError{Field: "id", Problem: "required"})
	require.True(t, errors.Is(err, ErrInvalid))
	require.False(t, errors.Is(err, ErrTooLarge))
	require.False(t, errors.Is(err, ErrDecode))
	require.Equal(t, "envelope: id: required", err.Error())
}

func TestKind(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want string
	}{
		{"none", Message{}, ""},
		{"text", Message{Text: &Text{}}, KindText},
		{"markdown", Message{Markdown: &Markdown{}}, KindMarkdown},
		{"link", Message{Link: &Link{}}, KindLink},
		{"actionCard", Message{ActionCard: &ActionCard{}}, KindActionCard},
		{"feedCard", Message{FeedCard: &FeedCard{}}, KindFeedCard},
		{"several", Message{Text: &Text{}, Link: &Link{}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.m.Kind())
		})
	}
}
