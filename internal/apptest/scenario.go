package apptest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// Scenario is one API call and what it must do.
type Scenario struct {
	Name    string
	Method  string
	Path    string
	Body    any      // string or a value to encode as JSON
	Headers []string // "Name: value", or "admin"
	Status  int
	// Code and Reason, when set, are the problem's code and reason.
	Code, Reason string
	// Fields, when set, are field names the problem must name.
	Fields []string
	// Contains are substrings the body must contain.
	Contains []string
	// Events are the "type collection" lines the call must append to the
	// log, in order; nil means none.
	Events []string
	// Check runs further assertions.
	Check func(t *testing.T, r *Response)
}

// Run runs scenarios in order against s, each as a subtest.
func (s *Server) Run(t *testing.T, scenarios []Scenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			before := s.LastSeq()
			r := s.Do(sc.Method, sc.Path, sc.Body, sc.Headers...)
			if r.Status != sc.Status {
				t.Fatalf("%s %s: status %d, want %d; body: %s", sc.Method, sc.Path, r.Status, sc.Status, r.Body)
			}
			if r.Status >= 400 {
				CheckProblem(t, r, sc.Code, sc.Reason, sc.Fields)
			}
			for _, want := range sc.Contains {
				if !strings.Contains(string(r.Body), want) {
					t.Errorf("body lacks %q: %s", want, r.Body)
				}
			}
			got := s.EventsAfter(before)
			want := sc.Events
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Errorf("events: got %q, want %q", got, want)
			}
			if sc.Check != nil {
				sc.Check(t, r)
			}
		})
	}
}

// CheckProblem asserts that r is a problem+json answer with the code,
// reason and fields given (empty ones are not checked).
func CheckProblem(t *testing.T, r *Response, code, reason string, fields []string) {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json", ct)
	}
	var p struct {
		Type, Title, Detail, Code, Reason, RequestID string
		Status                                       int
		Fields                                       map[string]string
	}
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem body: %v: %s", err, r.Body)
	}
	if p.Status != r.Status || p.Type != "about:blank" || p.Title == "" || p.Detail == "" || p.RequestID == "" {
		t.Errorf("incomplete problem: %s", r.Body)
	}
	if p.RequestID != r.Header.Get("X-Request-Id") {
		t.Errorf("requestId %q differs from X-Request-Id %q", p.RequestID, r.Header.Get("X-Request-Id"))
	}
	if code != "" && p.Code != code {
		t.Errorf("code %q, want %q (%s)", p.Code, code, r.Body)
	}
	if reason != "" && p.Reason != reason {
		t.Errorf("reason %q, want %q (%s)", p.Reason, reason, r.Body)
	}
	for _, f := range fields {
		if _, ok := p.Fields[f]; !ok {
			t.Errorf("fields lack %q: %s", f, r.Body)
		}
	}
	if p.Status == 500 {
		t.Errorf("500 answer: %s", r.Body)
	}
}
