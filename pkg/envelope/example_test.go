package envelope_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/botrelay/botrelay/pkg/envelope"
)

func ExampleNew() {
	clock := func() time.Time { return time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC) }
	e := envelope.New("ops-alerts",
		envelope.Message{Markdown: &envelope.Markdown{Title: "Deploy", Text: "## web v1.2 is live"}},
		envelope.WithID("deploy-1234"),
		envelope.WithTTL(30*time.Minute),
		envelope.WithLabels(map[string]string{"team": "web"}),
		envelope.WithClock(clock),
	)
	b, err := envelope.Encode(e)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(b))
	// Output:
	// {"v":1,"id":"deploy-1234","robot":"ops-alerts","message":{"markdown":{"title":"Deploy","text":"## web v1.2 is live"}},"created_at":"2024-05-01T12:00:00Z","expires_at":"2024-05-01T12:30:00Z","labels":{"team":"web"}}
}

func ExampleDecode() {
	e, err := envelope.Decode([]byte(`{"v":1,"id":"m-1","robot":"ops","message":{"text":{"content":"disk full on db1"}},"created_at":"2024-05-01T12:00:00Z"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.Robot, e.Message.Kind(), e.Message.PlainText())

	_, err = envelope.Decode([]byte(`{"v":1,"id":"m-2","robot":"ops","colour":"red"}`))
	fmt.Println(errors.Is(err, envelope.ErrDecode), err)

	_, err = envelope.Decode([]byte(`{"v":2,"id":"m-3"}`))
	fmt.Println(errors.Is(err, envelope.ErrUnsupportedVersion))
	// Output:
	// ops text disk full on db1
	// true envelope: decode: json: unknown field "colour"
	// true
}

func ExampleEnvelope_Validate() {
	e := &envelope.Envelope{
		ID:        "m-1",
		Robot:     "ops.alerts",
		Message:   envelope.Message{Markdown: &envelope.Markdown{Text: "no title"}},
		CreatedAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC),
	}
	err := e.Validate()
	fmt.Println(errors.Is(err, envelope.ErrInvalid))
	fmt.Println(err)
	// Output:
	// true
	// envelope: robot: invalid character at offset 3: only [A-Za-z0-9_-] allowed
	// envelope: message.markdown.title: required
}

func ExampleMessage_PlainText() {
	m := envelope.Message{ActionCard: &envelope.ActionCard{
		Title: "Release 1.2",
		Text:  "Approve the rollout?",
		Buttons: []envelope.Button{
			{Title: "Approve", ActionURL: "https://ci.example.com/approve"},
			{Title: "Reject", ActionURL: "https://ci.example.com/reject"},
		},
	}}
	fmt.Println(m.PlainText())
	// Output:
	// Release 1.2
	// Approve the rollout?
	// Approve: https://ci.example.com/approve
	// Reject: https://ci.example.com/reject
}

func ExampleEnvelope_ForRobot() {
	e := envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: "hi"}}, envelope.WithID("m-1"))
	for i, robot := range []string{"ops-dingtalk", "ops-popo"} {
		c := e.ForRobot(robot, 0)
		fmt.Println(i, c.ID, c.Robot)
	}
	// Output:
	// 0 m-1.ops-dingtalk ops-dingtalk
	// 1 m-1.ops-popo ops-popo
}
