// Command echo is the benchmark's HTTP function. It answers the request's
// JSON body back: as it is (checked to be JSON), or, with ?decode=1,
// decoded and encoded again with encoding/json together with the caller.
// Its native twin (fn.NativeEcho, POST /fn/native/echo) does the same in
// Go inside Mantle.
package main

import (
	"encoding/json"
	"strings"

	"github.com/mantlehq/mantle/sdk/go/mantle"
)

func init() { mantle.Handle(echo) }

func main() { mantle.Main() }

func echo(inv *mantle.Invocation) (*mantle.Result, error) {
	body := inv.Request.Bytes()
	if !strings.Contains(inv.Request.Query, "decode=1") {
		if !json.Valid(body) {
			return mantle.Text(400, "send JSON"), nil
		}
		return &mantle.Result{Status: 200, JSON: body}, nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return mantle.Text(400, "send JSON"), nil
	}
	return mantle.JSON(200, map[string]any{"function": inv.Function, "caller": inv.Caller.ID, "echo": v})
}
