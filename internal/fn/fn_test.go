package fn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/app"
	"github.com/mantlehq/mantle/internal/apptest"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/fn"
)

// start serves testdata (the test guest as several functions) on a new
// data folder, with runs reported to the returned channel.
func start(t *testing.T, data string) (*apptest.Server, chan fn.Run) {
	t.Helper()
	runs := make(chan fn.Run, 1000)
	s := apptest.StartDirWith(t, "testdata", data, nil, func(a *app.App) {
		a.Funcs.OnRun(func(r fn.Run) { runs <- r })
	})
	return s, runs
}

func TestHTTPFunction(t *testing.T) {
	s, _ := start(t, t.TempDir())
	_, user := s.User("ann@example.com")

	r := s.Do("POST", "/fn/guest", `{"do":"echo"}`)
	apptest.CheckProblem(t, r, "unauthenticated", "auth.required", nil)

	r = s.Do("POST", "/fn/guest?x=1", `{"do":"echo"}`, user, "X-Test: yes")
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("echo: %d %s", r.Status, r.Body)
	}
	var echo struct {
		Invocation fn.Invocation
		Env        string
	}
	json.Unmarshal(r.Body, &echo)
	inv := echo.Invocation
	if inv.Trigger != "http" || inv.Request.Method != "POST" || inv.Request.Path != "/fn/guest" || inv.Request.Query != "x=1" ||
		inv.Request.Body != `{"do":"echo"}` || inv.Request.Headers["X-Test"] != "yes" || inv.Caller.ID == "" || echo.Env != "hello" || inv.ABI != 1 {
		t.Fatalf("the invocation: %s", r.Body)
	}
	if _, ok := inv.Request.Headers["Authorization"]; ok {
		t.Fatal("the caller's credentials reached the function")
	}

	// A command-style function, open to anyone, with a path wildcard.
	r = s.Do("POST", "/fn/guest/abc", `{"do":"echo"}`)
	echo.Invocation = fn.Invocation{}
	json.Unmarshal(r.Body, &echo)
	if r.Status != 200 || echo.Invocation.Request.Params["id"] != "abc" || echo.Invocation.Caller.ID != "" {
		t.Fatalf("command: %d %s", r.Status, r.Body)
	}

	for _, tc := range []struct {
		body   string
		status int
		reason string
	}{
		{`{"do":"fail"}`, 500, "fn.error"},
		{`{"do":"panic"}`, 500, "fn.error"},
		{`{"do":"loop"}`, 504, "fn.timeout"},
		{`{"do":"big","n":5000}`, 500, "fn.error"}, // over maxOutput: the SDK reports the host's refusal
		{`{"do":"nothing-like-this"}`, 400, ""},
	} {
		r := s.Do("POST", "/fn/guest", tc.body, user)
		if r.Status != tc.status || tc.reason != "" && r.JSON()["reason"] != tc.reason {
			t.Fatalf("%s: %d %s, want %d %s", tc.body, r.Status, r.Body, tc.status, tc.reason)
		}
	}
	// Memory without bound: a trap at the function's cap (guest_alloc has
	// a long timeout, as the race detector makes filling memory slow).
	if r := s.Do("POST", "/fn/alloc", `{"do":"alloc"}`); r.Status != 500 || r.JSON()["reason"] != "fn.trap" {
		t.Fatalf("alloc: %d %s", r.Status, r.Body)
	}
	if r := s.Do("GET", "/fn/guest", nil, user); r.Status != 404 {
		t.Fatalf("GET on a POST route: %d", r.Status)
	}
	if r := s.Do("GET", "/api/health", nil); r.Status != 200 {
		t.Fatalf("health after the failures: %d", r.Status)
	}

	// The log has the guest's stderr (the panic's stack) and the failures.
	r = s.Do("GET", "/api/functions/guest/logs?limit=1000", nil, "admin")
	if r.Status != 200 || !strings.Contains(string(r.Body), "panic: asked to panic") || !strings.Contains(string(r.Body), "goroutine") ||
		!strings.Contains(string(r.Body), "timeout") {
		t.Fatalf("logs: %d %.2000s", r.Status, r.Body)
	}
	var logs struct{ Items []fn.LogLine }
	json.Unmarshal(r.Body, &logs)
	last := logs.Items[len(logs.Items)-1].N
	if r := s.Do("GET", fmt.Sprintf("/api/functions/guest/logs?after=%d", last), nil, "admin"); !strings.Contains(string(r.Body), `"items":[]`) {
		t.Fatalf("logs after the last: %s", r.Body)
	}
	apptest.CheckProblem(t, s.Do("GET", "/api/functions/guest/logs", nil, user), "permission_denied", "policy.denied", nil)

	r = s.Do("GET", "/api/functions", nil, "admin")
	var list struct{ Items []fn.Status }
	json.Unmarshal(r.Body, &list)
	i := slices.IndexFunc(list.Items, func(s fn.Status) bool { return s.Name == "guest" })
	if i < 0 || !list.Items[i].Loaded || list.Items[i].Style != fn.Reactor || list.Items[i].Calls != 6 || list.Items[i].Failures != 4 {
		t.Fatalf("functions: %s", r.Body)
	}
}

func TestHostCallsThroughEngine(t *testing.T) {
	s, _ := start(t, t.TempDir())
	_, user := s.User("bob@example.com")
	call := func(body string) map[string]any {
		t.Helper()
		r := s.Do("POST", "/fn/guest", body, user)
		m := r.JSON()
		if m == nil {
			m = map[string]any{}
		}
		m["_status"] = float64(r.Status)
		return m
	}
	before := s.LastSeq()
	rec := call(`{"do":"create","coll":"notes","data":{"title":"from a function","n":1}}`)
	id, _ := rec["id"].(string)
	if rec["_status"] != 200.0 || id == "" || rec["title"] != "from a function" {
		t.Fatalf("create: %v", rec)
	}
	evs := s.EventsAfter(before)
	if len(evs) != 1 || evs[0] != "record.created notes" {
		t.Fatalf("events %v", evs)
	}
	r := s.Do("GET", fmt.Sprintf("/api/events?after=%d", before), nil, "admin")
	if !strings.Contains(string(r.Body), `"actor":"fn:guest"`) {
		t.Fatalf("the event's actor is not the function: %s", r.Body)
	}
	if got := call(`{"do":"get","coll":"notes","id":"` + id + `"}`); got["n"] != 1.0 {
		t.Fatalf("get: %v", got)
	}
	if got := call(`{"do":"update","coll":"notes","id":"` + id + `","data":{"n":2}}`); got["n"] != 2.0 || got["version"] != 2.0 {
		t.Fatalf("update: %v", got)
	}
	got := call(`{"do":"list","coll":"notes","query":{"filter":"n == 2","limit":5}}`)
	if items, _ := got["items"].([]any); len(items) != 1 {
		t.Fatalf("list: %v", got)
	}
	// The function's rules: no role for secrets (administrators only).
	got = call(`{"do":"create","coll":"secrets","data":{"value":"x"}}`)
	if got["_status"] != 403.0 || got["error"].(map[string]any)["reason"] != "policy.denied" {
		t.Fatalf("create in secrets: %v", got)
	}
	// Invalid data: the engine's validation, as for any caller.
	got = call(`{"do":"create","coll":"notes","data":{"title":5}}`)
	if got["_status"] != 400.0 {
		t.Fatalf("invalid data: %v", got)
	}
	got = call(`{"do":"get","coll":"nope","id":"x"}`)
	if got["_status"] != 404.0 {
		t.Fatalf("unknown collection: %v", got)
	}
	// A function without the writer role may not create notes.
	r = s.Do("POST", "/fn/guest/x", `{"do":"create","coll":"notes","data":{"title":"no"}}`)
	if r.Status != 403 {
		t.Fatalf("guest_command create: %d %s", r.Status, r.Body)
	}
	// Custom events.
	before = s.LastSeq()
	got = call(`{"do":"emit","n":7}`)
	if got["_status"] != 200.0 {
		t.Fatalf("emit: %v", got)
	}
	r = s.Do("GET", fmt.Sprintf("/api/events?after=%d", before), nil, "admin")
	if !strings.Contains(string(r.Body), `"type":"test.emitted"`) || !strings.Contains(string(r.Body), `"data":{"n":7}`) {
		t.Fatalf("emitted: %s", r.Body)
	}
	if got := call(`{"do":"delete","coll":"notes","id":"` + id + `"}`); got["_status"] != 200.0 {
		t.Fatalf("delete: %v", got)
	}
	// Outbound HTTP: no hosts allowed.
	got = call(`{"do":"fetch","url":"https://example.com/"}`)
	if got["_status"] != 403.0 || got["error"].(map[string]any)["reason"] != "fn.host_not_allowed" {
		t.Fatalf("fetch: %v", got)
	}
}

func TestInvokeEndpoint(t *testing.T) {
	s, _ := start(t, t.TempDir())
	r := s.Do("POST", "/api/functions/guest/invoke", `{"do":"echo"}`, "admin")
	if r.Status != 200 || !strings.Contains(string(r.Body), `"trigger":"invoke"`) {
		t.Fatalf("invoke: %d %s", r.Status, r.Body)
	}
	apptest.CheckProblem(t, s.Do("POST", "/api/functions/nope/invoke", `{}`, "admin"), "not_found", "fn.not_found", nil)
	apptest.CheckProblem(t, s.Do("POST", "/api/functions/guest/invoke", `{}`), "unauthenticated", "auth.required", nil)
	r = s.Do("POST", "/api/functions/guest/invoke", `{"do":"fail"}`, "admin")
	if r.Status != 500 || r.JSON()["reason"] != "fn.error" {
		t.Fatalf("failed invoke: %d %s", r.Status, r.Body)
	}
}

// waitRuns collects n runs of a function (others are dropped).
func waitRuns(t *testing.T, runs chan fn.Run, name string, n int) []fn.Run {
	t.Helper()
	var got []fn.Run
	timeout := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case r := <-runs:
			if r.Function == name {
				got = append(got, r)
			}
		case <-timeout:
			t.Fatalf("%s: %d runs of %d after 30s: %v", name, len(got), n, got)
		}
	}
	return got
}

func TestEventTrigger(t *testing.T) {
	data := t.TempDir()
	s, runs := start(t, data)
	create := func(title string) int64 {
		r := s.Do("POST", "/api/collections/notes/records", map[string]any{"title": title}, "admin")
		if r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Body)
		}
		var seq int64
		fmt.Sscan(r.Header.Get("Mantle-Seq"), &seq)
		return seq
	}
	a, _, fail, b := create("a"), create("skip"), create("fail"), create("b")
	got := waitRuns(t, runs, "on_note", 4)
	var seen []string
	for _, r := range got {
		seen = append(seen, fmt.Sprintf("%d:%v", r.Seq, r.Err != nil))
	}
	want := []string{fmt.Sprint(a, ":false"), fmt.Sprint(fail, ":true"), fmt.Sprint(fail, ":true"), fmt.Sprint(b, ":false")}
	if !slices.Equal(seen, want) {
		t.Fatalf("runs %v, want %v (the filtered note is skipped, the failing one tried twice, all in order)", seen, want)
	}
	r := s.Do("GET", "/api/functions/on_note/dead", nil, "admin")
	var dead struct{ Items []struct{ Seq int64 } }
	json.Unmarshal(r.Body, &dead)
	if len(dead.Items) != 1 || dead.Items[0].Seq != fail {
		t.Fatalf("dead letters: %s", r.Body)
	}
	r = s.Do("GET", "/api/functions/on_note/attempts", nil, "admin")
	if !strings.Contains(string(r.Body), "refusing note") {
		t.Fatalf("attempts: %s", r.Body)
	}

	// Stop the triggers, write while they are off, restart the server:
	// the new notes are handled once, the old ones not again.
	s.App.Funcs.Stop()
	c, d := create("c"), create("d")
	s.Close()
	s, runs = start(t, data)
	got = waitRuns(t, runs, "on_note", 2)
	if got[0].Seq != c || got[1].Seq != d || got[0].Err != nil || got[1].Err != nil {
		t.Fatalf("after restart: %v, want %d then %d", got, c, d)
	}
	// Replay from the first note: every matching event again, in order.
	if r := s.Do("POST", "/api/functions/on_note/replay", map[string]any{"from": a}, "admin"); r.Status != 202 {
		t.Fatalf("replay: %d %s", r.Status, r.Body)
	}
	got = waitRuns(t, runs, "on_note", 6)
	if got[0].Seq != a || got[5].Seq != d {
		t.Fatalf("replay: %v", got)
	}
	select {
	case r := <-runs:
		if r.Function == "on_note" {
			t.Fatalf("an extra run: %v", r)
		}
	default:
	}
}

func TestSchedules(t *testing.T) {
	data := t.TempDir()
	s, runs := start(t, data)
	got := waitRuns(t, runs, "tick", 2)
	if d := got[1].Tick.Sub(got[0].Tick); d != time.Second {
		t.Fatalf("ticks %v and %v, want one second apart", got[0].Tick, got[1].Tick)
	}
	s.Close()

	// Three nights missed while down: the catch-up function runs the
	// last of them once; the other records the skip.
	db, err := app.Open(context.Background(), s.App.Config, s.App.Log)
	if err != nil {
		t.Fatal(err)
	}
	long := time.Now().Add(-72 * time.Hour)
	for _, name := range []string{"nightly", "nightly_nocatchup"} {
		err := db.Engine.Transact(context.Background(), func(tx engine.SystemTx) error {
			return tx.PutSecret(fn.KindSchedule, name, fmt.Appendf(nil, "%d", long.UnixNano()))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, runs = start(t, data)
	night := waitRuns(t, runs, "nightly", 1)[0]
	now := time.Now()
	want := time.Date(now.Year(), now.Month(), now.Day(), 3, 0, 0, 0, time.Local)
	if want.After(now) {
		want = want.AddDate(0, 0, -1)
	}
	if !night.Tick.Equal(want) || night.Err != nil {
		t.Fatalf("catch-up ran %v (%v), want the last missed night %v", night.Tick, night.Err, want)
	}
	r := s.Do("GET", "/api/functions/nightly_nocatchup/logs", nil, "admin")
	if !strings.Contains(string(r.Body), "ticks were missed") {
		t.Fatalf("nightly_nocatchup log: %s", r.Body)
	}
	// Ticks after the restart continue a second apart, none twice.
	ticks := waitRuns(t, runs, "tick", 2)
	if !ticks[1].Tick.After(ticks[0].Tick) || !ticks[0].Tick.After(got[1].Tick) {
		t.Fatalf("ticks after restart %v, before %v", ticks, got)
	}
	select {
	case r := <-runs:
		if r.Function == "nightly" || r.Function == "nightly_nocatchup" {
			t.Fatalf("a second catch-up: %v", r)
		}
	default:
	}
}

func TestBadModuleKeepsServing(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bad.wasm"), []byte("\x00asm\x01\x00\x00\x00garbage"), 0o644)
	os.WriteFile(filepath.Join(dir, "mantle.yaml"), []byte(`name: bad
collections:
  notes:
    fields:
      title: { type: text }
    rules: { list: "true" }
functions:
  broken:
    module: bad.wasm
    http: POST /fn/broken
    allow: "true"
`), 0o644)
	s := apptest.StartDir(t, dir, filepath.Join(dir, "data"))
	r := s.Do("POST", "/fn/broken", `{}`)
	apptest.CheckProblem(t, r, "unavailable", "fn.not_loaded", nil)
	r = s.Do("GET", "/api/functions", nil, "admin")
	if !strings.Contains(string(r.Body), `"loaded":false`) || !strings.Contains(string(r.Body), "not a valid WebAssembly module") {
		t.Fatalf("functions: %s", r.Body)
	}
	if r := s.Do("GET", "/api/collections/notes/records", nil); r.Status != 200 {
		t.Fatalf("the rest of the server: %d", r.Status)
	}
}
