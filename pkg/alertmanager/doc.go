// Package alertmanager turns a Prometheus Alertmanager webhook
// notification (payload version 4) into one botrelay markdown message: it
// decodes and checks the payload ([Parse]), derives a deterministic
// message id from the notification ([ID]), so that Alertmanager's retries
// of one notification are deduplicated by the stream, and renders the
// firing and resolved alerts with a Go text/template ([Renderer]) cut to a
// platform's size limit, the alerts left out counted as "+N more".
//
// The gateway serves it at POST /v1/alertmanager/{target}; a Go service
// receiving Alertmanager webhooks itself can use it with
// publisher.Publisher.
package alertmanager
