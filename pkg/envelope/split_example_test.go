package envelope_test

import (
	"fmt"
	"strings"

	"github.com/botrelay/botrelay/pkg/envelope"
)

func ExampleSplit() {
	var report strings.Builder
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&report, "- job %02d ok\n", i)
	}
	e := envelope.New("ops", envelope.Message{Markdown: &envelope.Markdown{Title: "Nightly", Text: report.String()}},
		envelope.WithID("nightly-0501"), envelope.WithAt(envelope.At{Mobiles: []string{"13800000000"}}))

	// A tiny limit for the example (each part holds at most
	// 600 - envelope.FramingReserve); 0 means envelope.MaxContentBytes.
	parts, err := envelope.Split(e, 600)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range parts {
		md := p.Message.Markdown
		lines := strings.Split(md.Text, "\n")
		fmt.Printf("%s %q jobs=%d ends=%q mentions=%t label=%s\n",
			p.ID, md.Title, strings.Count(md.Text, "- job"), lines[len(lines)-1], p.At != nil, p.Labels[envelope.LabelPart])
	}
	// Output:
	// nightly-0501.p1 "Nightly (1/3)" jobs=22 ends="(1/3)" mentions=false label=1/3
	// nightly-0501.p2 "Nightly (2/3)" jobs=22 ends="(2/3)" mentions=false label=2/3
	// nightly-0501.p3 "Nightly (3/3)" jobs=16 ends="(3/3)" mentions=true label=3/3
}
