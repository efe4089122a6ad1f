// Command guest is the test function of package fn: it does what its
// invocation's data says, to exercise the ABI, the limits and the host
// calls.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/mantlehq/mantle/sdk/go/mantle"
)

var calls int // survives between calls of a reactor instance

func init() { mantle.Handle(handle) }

func main() { mantle.Main() }

func handle(inv *mantle.Invocation) (*mantle.Result, error) {
	calls++
	var in struct {
		Do    string          `json:"do"`
		N     int             `json:"n"`
		Coll  string          `json:"coll"`
		ID    string          `json:"id"`
		Data  json.RawMessage `json:"data"`
		Query mantle.Query    `json:"query"`
		URL   string          `json:"url"`
	}
	if inv.Event != nil { // an event trigger: fail on notes titled "fail"
		var note struct{ Title string }
		inv.Event.Record(&note)
		if note.Title == "fail" {
			return nil, fmt.Errorf("refusing note %d (attempt %d)", inv.Event.Seq, inv.Attempt)
		}
		return nil, nil
	}
	if len(inv.Data) > 0 {
		if err := json.Unmarshal(inv.Data, &in); err != nil {
			return nil, err
		}
	} else if inv.Request != nil && inv.Request.Body != "" {
		inv.Request.JSON(&in)
	}
	switch in.Do {
	case "noop":
		return nil, nil
	case "echo", "":
		return mantle.JSON(200, map[string]any{"invocation": inv, "calls": calls, "env": os.Getenv("GREETING")})
	case "fail":
		return nil, fmt.Errorf("asked to fail")
	case "panic":
		panic("asked to panic")
	case "loop":
		for {
			calls++
		}
	case "recurse":
		return mantle.JSON(200, recurse(1))
	case "alloc": // grow memory without bound
		var keep [][]byte
		for {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1 // touch every page: the memory is really used
			}
			keep = append(keep, b)
		}
	case "big":
		return mantle.Text(200, strings.Repeat("x", in.N)), nil
	case "stderr":
		fmt.Fprintln(os.Stderr, "to stderr")
		mantle.Log("info", "to the log")
		return mantle.Text(200, "ok"), nil
	case "get":
		r, err := mantle.Records(in.Coll).Get(in.ID)
		return reply(r, err)
	case "list":
		p, err := mantle.Records(in.Coll).List(in.Query)
		return reply(p, err)
	case "create":
		r, err := mantle.Records(in.Coll).Create(in.Data)
		return reply(r, err)
	case "update":
		r, err := mantle.Records(in.Coll).Update(in.ID, in.Data, 0)
		return reply(r, err)
	case "delete":
		return reply(nil, mantle.Records(in.Coll).Delete(in.ID, 0))
	case "emit":
		seq, err := mantle.Emit("test.emitted", "s1", map[string]int{"n": in.N})
		return reply(seq, err)
	case "fetch":
		r, err := mantle.Fetch(mantle.FetchRequest{URL: in.URL})
		return reply(r, err)
	}
	return mantle.Text(400, "unknown do "+in.Do), nil
}

func recurse(n int) int { return recurse(n+1) + 1 }

// reply answers 200 with v, or the host call's error as {"error": …}
// with its status.
func reply(v any, err error) (*mantle.Result, error) {
	if err != nil {
		if e, ok := err.(*mantle.Error); ok {
			return mantle.JSON(e.Status, map[string]any{"error": e})
		}
		return nil, err
	}
	return mantle.JSON(200, v)
}
