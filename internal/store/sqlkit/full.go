package sqlkit

import "github.com/mantlehq/mantle"

// ErrFull is the answer to a write that failed because the database's disk
// is full: 507 store.full, never a 500. Reads go on, and writes work
// again once there is space.
var ErrFull = &mantle.Error{Code: mantle.Unavailable, Reason: "store.full", Status: 507, RetryAfter: 30,
	Message: "the database's disk is full: the write was not made; reads go on, and writes work again once space is freed"}
