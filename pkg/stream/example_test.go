package stream_test

import (
	"fmt"

	"github.com/botrelay/botrelay/pkg/stream"
)

func ExampleTopology() {
	prod := stream.Topology{} // the zero value is production's
	fmt.Println(prod.OutStream(), prod.DLQStream())
	fmt.Println(prod.OutSubject("ops"), prod.DLQSubject("ops"), prod.ConsumerName("ops"))

	staging := stream.Topology{Prefix: "staging"}
	fmt.Println(staging.OutStream(), staging.OutSubject("ops"))
	fmt.Println(staging.RobotFromSubject("staging.dlq.ops"))
	fmt.Println(stream.Topology{Prefix: "a.b"}.Validate())
	// Output:
	// BOTRELAY_OUT BOTRELAY_DLQ
	// botrelay.out.ops botrelay.dlq.ops robot_ops
	// STAGING_OUT staging.out.ops
	// ops
	// stream: invalid prefix: "a.b" must be 1-32 characters of [a-zA-Z0-9_-]
}
