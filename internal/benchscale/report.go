package benchscale

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Figure is one measured figure beside its target.
type Figure struct {
	Scenario string
	Name     string
	// Value is the measured figure, formatted.
	Value string
	// Target is what the issue asks ("" for context figures).
	Target string
	// Met is whether Value meets Target; nil without a target.
	Met *bool
}

// Report collects the figures of a run.
type Report struct {
	Figures []Figure
}

// Add records a figure with a target: met says whether it holds.
func (r *Report) Add(scenario, name, value, target string, met bool) {
	r.Figures = append(r.Figures, Figure{Scenario: scenario, Name: name, Value: value, Target: target, Met: &met})
}

// Info records a context figure without a target.
func (r *Report) Info(scenario, name, value string) {
	r.Figures = append(r.Figures, Figure{Scenario: scenario, Name: name, Value: value})
}

// Failed is how many figures miss their target.
func (r *Report) Failed() int {
	n := 0
	for _, f := range r.Figures {
		if f.Met != nil && !*f.Met {
			n++
		}
	}
	return n
}

// Print writes the figures as an aligned table, then a markdown table
// (for docs/benchmarks.md).
func (r *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tFIGURE\tMEASURED\tTARGET\t")
	for _, f := range r.Figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Scenario, f.Name, f.Value, f.Target, mark(f.Met))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | figure | measured | target | |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, f := range r.Figures {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", f.Scenario, esc(f.Name), esc(f.Value), esc(f.Target), mark(f.Met))
	}
	fmt.Fprintf(w, "\n%d of %d targets missed\n", r.Failed(), r.targets())
}

func (r *Report) targets() int {
	n := 0
	for _, f := range r.Figures {
		if f.Met != nil {
			n++
		}
	}
	return n
}

func mark(met *bool) string {
	switch {
	case met == nil:
		return ""
	case *met:
		return "ok"
	}
	return "MISSED"
}

func esc(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
