package envelope_test

import (
	"errors"
	"fmt"
	"strings"

	"github.com/botrelay/botrelay/pkg/envelope"
)

// ValidateFor checks a message under one platform's size rules: 3,000
// bytes of text fit DingTalk, not WeCom's 2,048.
func ExampleEnvelope_ValidateFor() {
	weCom := envelope.Limits{Platform: "wecom", Text: 2048, Markdown: 4091, Links: 8}
	env := envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: strings.Repeat("x", 3000)}})
	fmt.Println(env.Validate())
	err := env.ValidateFor(weCom)
	fmt.Println(errors.Is(err, envelope.ErrTooLarge), err)
	// Output:
	// <nil>
	// true envelope: message.text.content: too large for wecom: 3000 bytes, limit 2048
}

// SplitFor cuts a message into parts that each fit one platform's rules.
func ExampleSplitFor() {
	weCom := envelope.Limits{Platform: "wecom", Text: 2048}
	env := envelope.New("ops", envelope.Message{Text: &envelope.Text{Content: strings.Repeat("line of a log\n", 250)}},
		envelope.WithID("log-7"))
	parts, err := envelope.SplitFor(env, weCom)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range parts {
		fmt.Println(p.ID, len(p.Message.Text.Content) <= 2048)
	}
	// Output:
	// log-7.p1 true
	// log-7.p2 true
}
