package envelope

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const goodJSON = `{"v":1,"id":"m-1","robot":"ops","message":{"text":{"content":"hi"}},"created_at":"2024-05-01T12:00:00Z"}`

func TestDecode(t *testing.T) {
	e, err := Decode([]byte(goodJSON))
	require.NoError(t, err)
	require.Equal(t, &Envelope{V: 1, ID: "m-1", Robot: "ops", Message: textMsgWith("hi"), CreatedAt: t0}, e)

	// Version 0 (absent) is read as Version.
	e, err = Decode([]byte(strings.Replace(goodJSON, `"v":1,`, ``, 1)))
	require.NoError(t, err)
	require.Equal(t, Version, e.V)

	// Trailing whitespace is fine.
	_, err = Decode([]byte(goodJSON + " \n\t"))
	require.NoError(t, err)
}

func textMsgWith(s string) Message { return Message{Text: &Text{Content: s}} }

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		decode  bool // matches ErrDecode (else ErrInvalid)
		version bool // matches ErrUnsupportedVersion
		want    string
	}{
		{"empty", ``, true, false, "envelope: decode: empty input"},
		{"whitespace", "  \n", true, false, "envelope: decode: empty input"},
		{"malformed", `{"v":1,`, true, false, "envelope: decode: unexpected EOF"},
		{"syntax", `{"v":1 "id":"x"}`, true, false, "envelope: decode: invalid character"},
		{"not an object", `[1,2]`, true, false, "envelope: decode: json: cannot unmarshal array"},
		{"wrong type", `{"v":"1"}`, true, false, "envelope: decode: json: cannot unmarshal string"},
		{"unknown field", strings.Replace(goodJSON, `"robot"`, `"extra":1,"robot"`, 1), true, false, `unknown field "extra"`},
		{"unknown nested field", strings.Replace(goodJSON, `"content":"hi"`, `"content":"hi","mentions":[]`, 1), true, false, `unknown field "mentions"`},
		{"trailing object", goodJSON + `{}`, true, false, "envelope: decode: trailing data after the envelope"},
		{"trailing garbage", goodJSON + `x`, true, false, "envelope: decode: trailing data after the envelope"},
		{"future version", strings.Replace(goodJSON, `"v":1`, `"v":2`, 1), true, true,
			"envelope: decode: envelope: unsupported schema version: version 2 is newer than 1, the newest this build reads; upgrade the consumer"},
		{"future version with new fields", `{"v":7,"id":"x","newThing":{"a":1}}`, true, true, "version 7 is newer than 1"},
		{"invalid envelope", `{"v":1,"id":"m-1","robot":"ops","message":{},"created_at":"2024-05-01T12:00:00Z"}`, false, false,
			"envelope: message: no message kind set"},
		{"null", `null`, false, false, "envelope: id: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Decode([]byte(tt.in))
			require.Nil(t, e)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			if tt.decode {
				require.ErrorIs(t, err, ErrDecode)
				require.NotErrorIs(t, err, ErrInvalid)
			} else {
				require.ErrorIs(t, err, ErrInvalid)
				require.NotErrorIs(t, err, ErrDecode)
			}
			if tt.version {
				require.ErrorIs(t, err, ErrUnsupportedVersion)
			} else {
				require.NotErrorIs(t, err, ErrUnsupportedVersion)
			}
		})
	}
}

func TestDecodeTooLarge(t *testing.T) {
	e := valid(textMsgWith(strings.Repeat("x", MaxContentBytes)))
	b, err := json.Marshal(e)
	require.NoError(t, err)
	_, err = Decode(b)
	require.ErrorIs(t, err, ErrTooLarge)
	_, err = Encode(e)
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	exp := t0.Add(time.Hour)
	msgs := map[string]Message{
		"text":     textMsg(),
		"markdown": {Markdown: &Markdown{Title: "T", Text: "## <b>&</b> 字"}},
		"link":     {Link: &Link{Title: "T", Text: "x", MessageURL: "https://e.com/?a=1&b=2", PicURL: "https://e.com/p"}},
		"actionCard": {ActionCard: &ActionCard{Title: "T", Text: "x", BtnOrientation: "1",
			Buttons: []Button{{Title: "A", ActionURL: "https://e.com/a"}, {Title: "B", ActionURL: "https://e.com/b"}}}},
		"feedCard": {FeedCard: &FeedCard{Links: []FeedLink{{Title: "a", MessageURL: "https://e.com/a", PicURL: "https://e.com/p"}}}},
	}
	for name, m := range msgs {
		t.Run(name, func(t *testing.T) {
			e := valid(m)
			e.At = &At{Mobiles: []string{"138"}, UserIDs: []string{"u"}, All: true}
			e.ExpiresAt = &exp
			e.Labels = map[string]string{"team": "ops", "sev": "1"}
			b, err := Encode(e)
			require.NoError(t, err)
			got, err := Decode(b)
			require.NoError(t, err)
			require.Equal(t, e, got)
		})
	}
}

func TestEncode(t *testing.T) {
	e := valid(textMsg())
	e.V = 0
	b, err := Encode(e)
	require.NoError(t, err)
	require.Contains(t, string(b), `"v":1,`)
	require.Equal(t, 0, e.V, "Encode must not modify its argument")

	e.Robot = ""
	b, err = Encode(e)
	require.Nil(t, b)
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, "envelope: robot: required")

	_, err = Encode(nil)
	require.ErrorIs(t, err, ErrInvalid)
}

var idRE = regexp.MustCompile(`^[a-z2-7]{26}$`)

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		require.Regexp(t, idRE, id)
		require.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}
}

func TestNew(t *testing.T) {
	local := time.FixedZone("CST", 8*3600)
	clock := func() time.Time { return time.Date(2024, 5, 1, 20, 0, 0, 0, local) }
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

	tests := []struct {
		name string
		opts []Option
		want func(e *Envelope)
	}{
		{"defaults", nil, func(e *Envelope) {}},
		{"id", []Option{WithID("order-42")}, func(e *Envelope) { e.ID = "order-42" }},
		{"at", []Option{WithAt(At{Mobiles: []string{"138"}, All: true})}, func(e *Envelope) {
			e.At = &At{Mobiles: []string{"138"}, All: true}
		}},
		{"labels merge", []Option{WithLabels(map[string]string{"a": "1", "b": "1"}), WithLabels(map[string]string{"b": "2"})},
			func(e *Envelope) { e.Labels = map[string]string{"a": "1", "b": "2"} }},
		{"ttl", []Option{WithTTL(10 * time.Minute)}, func(e *Envelope) {
			x := created.Add(10 * time.Minute)
			e.ExpiresAt = &x
		}},
		{"zero ttl", []Option{WithTTL(0)}, func(e *Envelope) {}},
		{"expiresAt in UTC", []Option{WithExpiresAt(time.Date(2024, 5, 1, 21, 0, 0, 0, local))}, func(e *Envelope) {
			x := created.Add(time.Hour)
			e.ExpiresAt = &x
		}},
		{"ttl replaces expiresAt", []Option{WithExpiresAt(created.Add(time.Hour)), WithTTL(time.Minute)}, func(e *Envelope) {
			x := created.Add(time.Minute)
			e.ExpiresAt = &x
		}},
		{"expiresAt replaces ttl", []Option{WithTTL(time.Minute), WithExpiresAt(created.Add(time.Hour))}, func(e *Envelope) {
			x := created.Add(time.Hour)
			e.ExpiresAt = &x
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New("ops", textMsg(), append([]Option{WithClock(clock)}, tt.opts...)...)
			require.NoError(t, e.Validate())
			want := &Envelope{V: Version, ID: e.ID, Robot: "ops", Message: textMsg(), CreatedAt: created}
			tt.want(want)
			require.Equal(t, want, e)
			require.Equal(t, time.UTC, e.CreatedAt.Location())
			if want.ID != "order-42" {
				require.Regexp(t, idRE, e.ID)
			}
		})
	}
}

func TestNewDefaultClock(t *testing.T) {
	before := time.Now()
	e := New("ops", textMsg())
	require.False(t, e.CreatedAt.Before(before.Truncate(time.Second)))
	require.False(t, e.CreatedAt.After(time.Now()))
	require.Equal(t, time.UTC, e.CreatedAt.Location())
	require.NotEqual(t, e.ID, New("ops", textMsg()).ID)
}

func TestNewCopies(t *testing.T) {
	msg := Message{ActionCard: &ActionCard{Title: "t", Text: "x", Buttons: []Button{{Title: "a", ActionURL: "https://e.com"}}}}
	labels := map[string]string{"a": "1"}
	at := At{Mobiles: []string{"138"}}
	exp := WithExpiresAt(t0.Add(time.Hour))
	e := New("ops", msg, WithLabels(labels), WithAt(at), exp)
	e2 := New("ops", msg, exp)

	msg.ActionCard.Title = "changed"
	msg.ActionCard.Buttons[0].Title = "changed"
	labels["a"] = "changed"
	at.Mobiles[0] = "changed"
	*e2.ExpiresAt = t0

	require.Equal(t, "t", e.Message.ActionCard.Title)
	require.Equal(t, "a", e.Message.ActionCard.Buttons[0].Title)
	require.Equal(t, "1", e.Labels["a"])
	require.Equal(t, "138", e.At.Mobiles[0])
	require.Equal(t, t0.Add(time.Hour), *e.ExpiresAt)
}

func TestExpired(t *testing.T) {
	exp := t0.Add(time.Minute)
	withExp := valid(textMsg())
	withExp.ExpiresAt = &exp
	tests := []struct {
		name string
		e    *Envelope
		now  time.Time
		want bool
	}{
		{"no expiry", valid(textMsg()), t0.Add(1000 * time.Hour), false},
		{"before", withExp, exp.Add(-time.Nanosecond), false},
		{"at the moment", withExp, exp, false},
		{"after", withExp, exp.Add(time.Nanosecond), true},
		{"other zone", withExp, exp.In(time.FixedZone("X", 3600)).Add(time.Second), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.e.Expired(tt.now))
		})
	}
}

func TestForRobot(t *testing.T) {
	long := strings.Repeat("i", MaxIDLen)
	// Hashes from: printf '%s.r' "$(printf 'i%.0s' $(seq 128))" | sha256sum | cut -c1-16
	tests := []struct {
		name  string
		id    string
		robot string
		n     int
		want  string
	}{
		{"first", "abc", "popo-1", 0, "abc.popo-1"},
		{"nth", "abc", "popo-1", 3, "abc.popo-1.3"},
		{"negative n is 0", "abc", "r", -1, "abc.r"},
		{"long id shortened", long, "r", 0, long[:111] + ".ea5fbc14698e8cfb"},
		{"long id other robot differs", long, "s", 0, long[:111] + ".76368449e6236c07"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := valid(textMsg())
			e.ID = tt.id
			c := e.ForRobot(tt.robot, tt.n)
			require.Equal(t, tt.want, c.ID)
			require.Equal(t, tt.robot, c.Robot)
			require.NoError(t, c.Validate())
			require.Equal(t, c.ID, e.ForRobot(tt.robot, tt.n).ID, "deterministic")
		})
	}
}

func TestForRobotDeepCopy(t *testing.T) {
	exp := t0.Add(time.Hour)
	e := valid(Message{FeedCard: &FeedCard{Links: []FeedLink{{Title: "a", MessageURL: "https://e.com"}}}})
	e.Labels = map[string]string{"team": "ops"}
	e.At = &At{Mobiles: []string{"138"}}
	e.ExpiresAt = &exp
	c := e.ForRobot("other", 0)

	c.Labels["team"] = "x"
	c.Labels["new"] = "y"
	c.At.Mobiles[0] = "x"
	c.Message.FeedCard.Links[0].Title = "x"
	*c.ExpiresAt = t0

	require.Equal(t, map[string]string{"team": "ops"}, e.Labels)
	require.Equal(t, "138", e.At.Mobiles[0])
	require.Equal(t, "a", e.Message.FeedCard.Links[0].Title)
	require.Equal(t, t0.Add(time.Hour), *e.ExpiresAt)
	require.Equal(t, "ops-alerts_1", e.Robot)
	require.Equal(t, "other", c.Robot)
	require.Equal(t, e.CreatedAt, c.CreatedAt)
}

func TestForRobotCopiesEveryKind(t *testing.T) {
	msgs := map[string]func() Message{
		KindText:     func() Message { return Message{Text: &Text{Content: "a"}} },
		KindMarkdown: func() Message { return Message{Markdown: &Markdown{Title: "a", Text: "a"}} },
		KindLink:     func() Message { return Message{Link: &Link{Title: "a", Text: "a", MessageURL: "https://e.com"}} },
		KindActionCard: func() Message {
			return Message{ActionCard: &ActionCard{Title: "a", Text: "a", Buttons: []Button{{Title: "a", ActionURL: "https://e.com"}}}}
		},
		KindFeedCard: func() Message {
			return Message{FeedCard: &FeedCard{Links: []FeedLink{{Title: "a", MessageURL: "https://e.com"}}}}
		},
	}
	for kind, mk := range msgs {
		t.Run(kind, func(t *testing.T) {
			e := valid(mk())
			c := e.ForRobot("other", 0)
			require.Equal(t, e.Message, c.Message)
			switch kind {
			case KindText:
				c.Message.Text.Content = "x"
			case KindMarkdown:
				c.Message.Markdown.Title = "x"
			case KindLink:
				c.Message.Link.Title = "x"
			case KindActionCard:
				c.Message.ActionCard.Buttons[0].Title = "x"
			case KindFeedCard:
				c.Message.FeedCard.Links[0].Title = "x"
			}
			require.Equal(t, mk(), e.Message, "original changed through the copy")
		})
	}
}
