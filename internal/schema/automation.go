package schema

import "time"

// Automation is a declarative trigger → condition → actions flow in the
// project file. See docs/automations.md.
type Automation struct {
	Name    string    `json:"name"`
	On      []Trigger `json:"on,omitempty"`      // record or custom events
	Cron    string    `json:"cron,omitempty"`    // a schedule
	CatchUp bool      `json:"catchUp,omitempty"` // run a tick missed while down
	Hook    bool      `json:"hook,omitempty"`    // POST /api/automations/{name}/run starts it
	Allow   string    `json:"allow,omitempty"`   // who may call the hook (CEL over auth); empty: administrators
	If      *Expr     `json:"if,omitempty"`      // CEL: run only when true
	Do      []Action  `json:"do"`
	Roles   []string  `json:"roles,omitempty"` // the identity its record actions run as

	MaxAttempts int           `json:"maxAttempts"`
	RetryMin    time.Duration `json:"retryMin"`
	RetryMax    time.Duration `json:"retryMax"`
}

// Expr is a CEL expression with where it was written (file:line:col).
type Expr struct {
	Src string `json:"src"`
	Pos string `json:"pos"`
}

// Action is one step of an automation. Kind says which fields matter.
type Action struct {
	Name       string           `json:"name"`
	Kind       string           `json:"kind"`                 // create, update, delete, webhook, invoke, emit
	Pos        string           `json:"pos"`                  // where the step is written
	Collection string           `json:"collection,omitempty"` // create, update, delete
	ID         *Expr            `json:"id,omitempty"`         // update, delete
	Data       map[string]*Expr `json:"data,omitempty"`       // create, update: field → value
	URL        string           `json:"url,omitempty"`        // webhook
	Method     string           `json:"method,omitempty"`     // webhook; default POST
	Headers    map[string]*Expr `json:"headers,omitempty"`    // webhook
	Body       *Expr            `json:"body,omitempty"`       // webhook, emit (data), invoke (data)
	Function   string           `json:"function,omitempty"`   // invoke
	Type       string           `json:"type,omitempty"`       // emit
	Subject    *Expr            `json:"subject,omitempty"`    // emit
}
