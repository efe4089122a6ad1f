// Command sink is the benchmark's event-triggered function: it decodes
// each item's record and does nothing else, so the trigger's lag is
// Mantle's own.
package main

import "github.com/mantlehq/mantle/sdk/go/mantle"

func init() { mantle.Handle(sink) }

func main() { mantle.Main() }

func sink(inv *mantle.Invocation) (*mantle.Result, error) {
	var item struct{ Title string }
	if inv.Event != nil {
		if err := inv.Event.Record(&item); err != nil {
			return nil, err
		}
	}
	return nil, nil
}
