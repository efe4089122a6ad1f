// Command echo is the benchmark's HTTP function: it decodes the request's
// JSON body and answers it back with the caller, as its native twin
// (fn.NativeEcho, POST /fn/native/echo) does in Go.
package main

import (
	"encoding/json"

	"github.com/mantlehq/mantle/sdk/go/mantle"
)

func init() { mantle.Handle(echo) }

func main() { mantle.Main() }

func echo(inv *mantle.Invocation) (*mantle.Result, error) {
	var body any
	if inv.Request != nil {
		json.Unmarshal(inv.Request.Bytes(), &body)
	}
	return mantle.JSON(200, map[string]any{"function": inv.Function, "caller": inv.Caller.ID, "echo": body})
}
