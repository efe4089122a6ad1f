// Package fn runs a project's serverless functions: WebAssembly modules
// under wazero (one runtime per function, one compilation cache shared by
// all), called through ABI 1, the "mantle" host module whose calls go
// through the engine with the caller's identity and rules. Each module is
// rewritten once at compile time (data segments joined, a countdown in
// every loop that calls mantle.interrupt, so a timeout costs no check per
// iteration) and kept in a pool of instances, or run as a command per call.
// The Manager loads the functions of a project, serves the HTTP ones under
// /fn/, runs event triggers from the event log with durable cursors and
// dead letters, runs schedules, and keeps each function's logs and stats.
// docs/functions.md is the guide.
package fn
