package testenv_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/testenv"
	"github.com/botrelay/botrelay/pkg/robotsim"
)

func TestPostsCheck(t *testing.T) {
	req := func(outcome, content string) robotsim.Request {
		return robotsim.Request{Outcome: outcome, Content: content, MsgUUID: "id-" + content}
	}
	acc := func(c string) robotsim.Request { return req(robotsim.RequestAccepted, c) }
	tests := []struct {
		name    string
		reqs    []robotsim.Request
		repeats int
		wantErr string
	}{
		{name: "exact", reqs: []robotsim.Request{req(robotsim.RequestFaulted, ""), acc("one"), req(robotsim.RequestRefused, "two"), acc("two")}},
		{name: "POPO repeat", reqs: []robotsim.Request{acc("one"), acc("one"), acc("two")}, wantErr: "1 repeats"},
		{name: "DingTalk repeat dropped by msgUuid", reqs: []robotsim.Request{acc("one"), acc("two"), req(robotsim.RequestDuplicate, "one")}, wantErr: "1 repeats"},
		{name: "allowed repeat", reqs: []robotsim.Request{acc("one"), req(robotsim.RequestDuplicate, "one"), acc("two")}, repeats: 1},
		{name: "missing", reqs: []robotsim.Request{acc("one"), acc("one")}, repeats: 1, wantErr: "first appearance"},
		{name: "out of order", reqs: []robotsim.Request{acc("two"), acc("one")}, wantErr: "first appearance"},
		{name: "extra", reqs: []robotsim.Request{acc("one"), acc("two"), acc("three")}, wantErr: "first appearance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, key := range []func(robotsim.Request) string{testenv.ByContent, testenv.ByMsgUUID} {
				p := testenv.SplitPosts(tt.reqs, key)
				want := []string{key(acc("one")), key(acc("two"))}
				err := p.Check(want, tt.repeats)
				if tt.wantErr == "" {
					require.NoError(t, err)
					continue
				}
				require.ErrorContains(t, err, tt.wantErr)
			}
		})
	}
	p := testenv.SplitPosts([]robotsim.Request{acc("one")}, nil)
	require.ErrorContains(t, p.Check([]string{"one", "one"}, 0), "names \"one\" twice")
}
