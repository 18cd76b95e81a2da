package worker

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/pkg/ledger"
)

func TestUnexplained(t *testing.T) {
	tests := []struct {
		name      string
		delivered uint64
		st        ledger.State
		want      int
	}{
		{name: "first delivery", delivered: 1, want: 0},
		{name: "after two retries", delivered: 3, st: ledger.State{Failures: 2}, want: 0},
		{name: "after waits", delivered: 6, st: ledger.State{Failures: 1, Waits: 4}, want: 0},
		{name: "one crash among waits", delivered: 4, st: ledger.State{Waits: 2}, want: 1},
		{name: "ledger unavailable", delivered: 5, want: 4},
		{name: "ledger ahead of the server", delivered: 1, st: ledger.State{Failures: 3}, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, unexplained(tt.delivered, tt.st))
		})
	}
}
