// Package mantle is the guest SDK for Mantle functions written in Go.
//
// A function is a Go main package built for GOOS=wasip1 GOARCH=wasm. It
// registers one handler in init and calls Main from main:
//
//	func init() { mantle.Handle(score) }
//	func main() { mantle.Main() }
//
//	func score(inv *mantle.Invocation) (*mantle.Result, error) {
//		var in struct{ Account string }
//		if err := inv.Request.JSON(&in); err != nil {
//			return mantle.Text(400, "not JSON"), nil
//		}
//		page, err := mantle.Records("transactions").List(mantle.Query{Filter: `account == "` + in.Account + `"`})
//		...
//		return mantle.JSON(200, map[string]any{"score": s})
//	}
//
// Built as a reactor (go build -buildmode=c-shared, what Mantle does by
// default for a Go source folder), the module stays instantiated and
// Mantle calls the handler once per invocation; globals survive between
// calls. Built as a command (a plain go build), main runs once per call.
//
// The handler reaches data only through host calls (Records, Emit, Fetch),
// which Mantle runs through its engine with the function's identity and
// rules; they emit events like any other write. The ABI beneath is
// documented in Mantle's docs/functions.md.
//
// Outside WebAssembly (go test on the host) the host calls answer
// ErrNoHost, and Call lets a test run a handler on an invocation of its
// own.
package mantle
