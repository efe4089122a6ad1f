package schema

import "time"

// Function is a WebAssembly function declared in the project file. See
// docs/functions.md.
type Function struct {
	Name   string `json:"name"`
	Module string `json:"module"`          // a .wasm file or a Go source folder, relative to the project
	Style  string `json:"style,omitempty"` // Go source: "reactor" (default) or "command"

	HTTP  *Route `json:"http,omitempty"`  // an HTTP trigger
	Allow string `json:"allow,omitempty"` // who may call the route: a CEL rule over auth; empty: administrators

	On     []Trigger `json:"on,omitempty"`     // event triggers
	Filter string    `json:"filter,omitempty"` // CEL over the record of record events

	Cron    string `json:"cron,omitempty"`    // a schedule, five fields or a descriptor such as @hourly
	CatchUp bool   `json:"catchUp,omitempty"` // run a tick missed while down, once, at start

	Timeout      time.Duration     `json:"timeout"`
	MemoryBytes  uint64            `json:"memory"`
	MaxOutput    int               `json:"maxOutput"`
	MaxInstances int               `json:"instances"`
	Warm         int               `json:"warm"`
	Env          map[string]string `json:"env,omitempty"`
	Roles        []string          `json:"roles,omitempty"` // the identity its host calls run as
	Hosts        []string          `json:"hosts,omitempty"` // outbound HTTP allow-list

	MaxAttempts int           `json:"maxAttempts"` // event triggers: then a dead letter
	RetryMin    time.Duration `json:"retryMin"`
	RetryMax    time.Duration `json:"retryMax"`
}

// Route is an HTTP trigger: a method and a path under /fn/, which may
// have {name} wildcards as net/http patterns do.
type Route struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

// Trigger is one event trigger: record events of a collection (Type
// "record.created", "record.updated", "record.deleted" or "record.*"), or
// a custom event type with no collection.
type Trigger struct {
	Collection string `json:"collection,omitempty"`
	Type       string `json:"type"`
}

// Matches reports whether an event of a type and collection fires t.
func (t Trigger) Matches(typ, collection string) bool {
	if t.Collection != collection {
		return false
	}
	return t.Type == typ || t.Type == "record.*" && len(typ) > 7 && typ[:7] == "record."
}

// String renders the trigger as the project file has it.
func (t Trigger) String() string {
	if t.Collection == "" {
		return t.Type
	}
	return t.Collection + "." + t.Type
}
