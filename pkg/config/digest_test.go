package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/config"
)

func TestDigestValidation(t *testing.T) {
	tests := []struct {
		name  string
		extra []string
		want  []string // every one must be in the error; none: valid
	}{
		{name: "valid", extra: []string{"keywords: [\"告警\"]", "digest:", "  after: 30s", "  title: \"告警 digest\""}},
		{name: "valid without keywords or title", extra: []string{"digest:", "  after: 1s", "  max_items: 50"}},
		{name: "after missing", extra: []string{"digest:", "  max_items: 5"},
			want: []string{`robots[0] "a": digest.after: must be positive (the longest a message waits for its own post), got 0s`}},
		{name: "after negative", extra: []string{"digest:", "  after: -3s"},
			want: []string{`digest.after: must be positive (the longest a message waits for its own post), got -3s`}},
		{name: "max_items negative", extra: []string{"digest:", "  after: 30s", "  max_items: -1"},
			want: []string{`robots[0] "a": digest.max_items: must be 0 (as many as fit) to 1000, got -1`}},
		{name: "max_items too many", extra: []string{"digest:", "  after: 30s", "  max_items: 1001"},
			want: []string{`digest.max_items: must be 0 (as many as fit) to 1000, got 1001`}},
		{name: "max_items one", extra: []string{"digest:", "  after: 30s", "  max_items: 1"},
			want: []string{`digest.max_items: 1 folds nothing`}},
		{name: "title without keyword", extra: []string{"keywords: [\"告警\", \"alert\"]", "digest:", "  after: 30s", "  title: \"digest\""},
			want: []string{`robots[0] "a": digest.title: "digest" carries none of the robot's keywords ["告警" "alert"]`}},
		{name: "title missing with keywords", extra: []string{"keywords: [\"告警\"]", "digest:", "  after: 30s"},
			want: []string{`robots[0] "a": digest.title: required when the robot has keywords`}},
		{name: "every problem at once", extra: []string{"keywords: [\"k\"]", "digest:", "  max_items: -2", "  title: x"},
			want: []string{"digest.after: must be positive", "digest.max_items: must be 0", `digest.title: "x" carries none`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse([]byte("robots:\n"+robotYAML("a", tt.extra...)), noEnv)
			if len(tt.want) == 0 {
				require.NoError(t, err)
				require.NotNil(t, cfg.Robots[0].Digest)
				require.Positive(t, time.Duration(cfg.Robots[0].Digest.After))
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
			require.Equal(t, len(tt.want), strings.Count(err.Error(), "digest."), err.Error())
		})
	}
}
