package alertmanager_test

import (
	"fmt"
	"log"

	"github.com/botrelay/botrelay/pkg/alertmanager"
	"github.com/botrelay/botrelay/pkg/delivery"
)

func ExampleRenderer_Render() {
	body := []byte(`{"version": "4", "status": "firing", "receiver": "sre",
	  "groupKey": "{}:{alertname=\"DiskFull\"}", "groupLabels": {"alertname": "DiskFull"},
	  "alerts": [{"status": "firing", "fingerprint": "4f1c",
	    "labels": {"alertname": "DiskFull", "severity": "critical", "instance": "db-3"},
	    "annotations": {"summary": "/var is 97% full"},
	    "startsAt": "2025-03-01T12:00:00Z"}]}`)
	p, err := alertmanager.Parse(body)
	if err != nil {
		log.Fatal(err)
	}
	r, err := alertmanager.New("") // the default template
	if err != nil {
		log.Fatal(err)
	}
	dingtalk, _ := delivery.LookupPlatform(delivery.PlatformDingTalk)
	md, err := r.Render(p, "告警", dingtalk.Size) // the robot's keyword heads the title
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(alertmanager.ID(p) == alertmanager.ID(p)) // a retry has the same id
	fmt.Println(md.Title)
	fmt.Println(md.Text)
	// Output:
	// true
	// 告警 [FIRING:1] DiskFull
	// ### 告警 [FIRING:1] DiskFull
	//
	// #### 🔥 FIRING DiskFull · critical
	//
	// **/var is 97% full**
	//
	// - labels: `instance=db-3`
	// - started: 2025-03-01 12:00:00 UTC
}
