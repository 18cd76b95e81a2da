package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/botrelay/botrelay/internal/cli"
	"github.com/botrelay/botrelay/internal/testenv"
)

func TestCheckConfigWarnsOfPlainHTTP(t *testing.T) {
	path := testenv.WriteFile(t, "robots.yaml", `robots:
  - name: clear
    platform: dingtalk
    webhook: "http://oapi.dingtalk.com/robot/send?access_token=`+dingToken+`"
  - name: sim
    platform: dingtalk
    webhook: "http://127.0.0.1:9999/robot/send?access_token=`+dingToken+`-sim"
`)
	var stdout, stderr bytes.Buffer
	err := runEnv(context.Background(), []string{"--check-config", "--config", path}, &stdout, &stderr, cli.Env{Lookup: testenv.LookupMap(nil)})
	require.NoError(t, err)
	require.Contains(t, stdout.String(), "\nwarning: robots[0] \"clear\": webhook: http:// to a host other than the loopback sends the robot's token in clear text; use https\n")
	require.NotContains(t, stdout.String(), `robots[1] "sim": webhook: http://`, "a local simulator is fine")
	require.NotContains(t, stdout.String(), dingToken)
}
