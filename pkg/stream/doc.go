// Package stream names and creates the JetStream streams and consumers
// botrelay uses, so the producer, the worker and the dead-letter tools agree
// on one topology.
//
// Outbound messages live in the work-queue stream <PREFIX>_OUT on subjects
// <prefix>.out.<robot>: one subject per robot. Each configured robot has its
// own durable pull consumer filtered on its subject with MaxAckPending 1,
// shared by every worker. That one choice gives three properties:
//
//   - order: a robot's next message is not handed out until the current one
//     is acked or dead-lettered, whatever the number of workers;
//   - no head-of-line blocking: a robot with a backlog, a retry or a ban
//     cool-off holds at most one pending message on its own consumer and
//     never delays another robot;
//   - bounded pending state: delayed redeliveries cannot pile up against a
//     consumer's MaxAckPending.
//
// Dead letters live in <PREFIX>_DLQ on subjects <prefix>.dlq.<robot>, a
// limits stream kept until an operator purges it.
package stream
