package fn

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/fn/fntest"
	"github.com/tetratelabs/wazero"
)

// The test guest (testdata/guest), built once per test binary in both
// styles, and a compilation cache shared by the tests (and kept between
// runs, so that only the first run pays for compiling).
var (
	guestOnce sync.Once
	guestWasm map[Style][]byte
	guestErr  error
	cacheOnce sync.Once
	cache     wazero.CompilationCache
)

func guest(t testing.TB, style Style) []byte {
	t.Helper()
	guestOnce.Do(func() {
		guestWasm = map[Style][]byte{}
		for _, s := range []Style{Reactor, Command} {
			b, err := BuildGo(context.Background(), "testdata/guest", s)
			if err != nil {
				guestErr = err
				return
			}
			guestWasm[s] = b
		}
	})
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	return guestWasm[style]
}

func testCache(t testing.TB) wazero.CompilationCache {
	fntest.Precompile(t, "testdata")
	cacheOnce.Do(func() {
		c, err := wazero.NewCompilationCacheWithDir(fntest.CacheDir())
		if err != nil {
			t.Fatal(err)
		}
		cache = c
	})
	return cache
}

func compile(t testing.TB, style Style, l Limits) *Module {
	t.Helper()
	m, err := Compile(context.Background(), testCache(t), "guest", guest(t, style), map[string]string{"GREETING": "hello"}, l)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// fakeHost answers host calls from a table, recording them.
type fakeHost struct {
	mu    sync.Mutex
	calls []string
}

func (h *fakeHost) Call(_ context.Context, op string, req []byte) ([]byte, bool) {
	h.mu.Lock()
	h.calls = append(h.calls, op+" "+string(req))
	h.mu.Unlock()
	switch op {
	case "records.get":
		return []byte(`{"data":{"id":"r1","title":"from the host"}}`), true
	case "records.list":
		big := strings.Repeat("y", 100<<10) // over the guest's 64 KiB buffer: the two-step fetch
		return []byte(`{"data":{"items":[{"id":"a","pad":"` + big + `"}],"nextCursor":null}}`), true
	case "records.create":
		return Problem(403, "rule.denied", "no"), true
	}
	return nil, false
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(level int, msg string) {
	l.mu.Lock()
	l.lines = append(l.lines, msg)
	l.mu.Unlock()
}

func (l *logLines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

func invoke(t *testing.T, m *Module, data string) (map[string]any, *logLines, error) {
	t.Helper()
	in, _ := json.Marshal(map[string]any{"abi": 1, "function": "guest", "trigger": "invoke", "data": json.RawMessage(data)})
	logs := &logLines{}
	out, err := m.Call(context.Background(), in, &fakeHost{}, logs.add)
	if err != nil {
		return nil, logs, err
	}
	var res map[string]any
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	return res, logs, nil
}

func body(t *testing.T, res map[string]any) map[string]any {
	t.Helper()
	var v map[string]any
	b, _ := json.Marshal(res["json"])
	json.Unmarshal(b, &v)
	return v
}

func TestStyles(t *testing.T) {
	for _, style := range []Style{Reactor, Command} {
		t.Run(string(style), func(t *testing.T) {
			m := compile(t, style, Limits{})
			if m.Style() != style {
				t.Fatalf("style %s, want %s", m.Style(), style)
			}
			var calls []float64
			for range 3 {
				res, _, err := invoke(t, m, `{"do":"echo"}`)
				if err != nil {
					t.Fatal(err)
				}
				b := body(t, res)
				if b["env"] != "hello" || b["invocation"].(map[string]any)["function"] != "guest" {
					t.Fatalf("echo: %v", b)
				}
				calls = append(calls, b["calls"].(float64))
			}
			// A reactor instance keeps its globals; a command starts afresh.
			want := []float64{1, 2, 3}
			if style == Command {
				want = []float64{1, 1, 1}
			}
			if !equal(calls, want) {
				t.Fatalf("calls %v, want %v", calls, want)
			}
		})
	}
}

func equal(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestHostCalls(t *testing.T) {
	m := compile(t, Reactor, Limits{})
	res, _, err := invoke(t, m, `{"do":"get","coll":"posts","id":"r1"}`)
	if err != nil || body(t, res)["title"] != "from the host" {
		t.Fatalf("get: %v %v", res, err)
	}
	res, _, err = invoke(t, m, `{"do":"list","coll":"posts"}`)
	if err != nil {
		t.Fatal(err)
	}
	items := body(t, res)["items"].([]any)
	if len(items) != 1 || len(items[0].(map[string]any)["pad"].(string)) != 100<<10 {
		t.Fatalf("list: the large answer did not arrive whole")
	}
	res, _, err = invoke(t, m, `{"do":"create","coll":"posts","data":{}}`)
	if err != nil || res["status"] != 403.0 || body(t, res)["error"].(map[string]any)["reason"] != "rule.denied" {
		t.Fatalf("create: %v %v", res, err)
	}
	// A call the host does not have is an ABI error the SDK reports.
	res, logs, err := invoke(t, m, `{"do":"emit"}`)
	var f *Failure
	if !errors.As(err, &f) || f.Kind != "error" || !strings.Contains(f.Message, "no such call") {
		t.Fatalf("emit on a host without it: %v %v", res, err)
	}
	if !strings.Contains(logs.text(), `no host call "events.emit"`) {
		t.Fatalf("log: %q", logs.text())
	}
}

func TestFailures(t *testing.T) {
	for _, style := range []Style{Reactor, Command} {
		t.Run(string(style), func(t *testing.T) {
			m := compile(t, style, Limits{Timeout: 2 * time.Second, MemoryBytes: 32 << 20, MaxOutput: 4096})
			for _, tc := range []struct{ do, kind, msg string }{
				{`{"do":"fail"}`, "error", "asked to fail"},
				{`{"do":"panic"}`, "error", "panic: asked to panic"},
				{`{"do":"loop"}`, "timeout", "no answer within 2s"},
				{`{"do":"recurse"}`, "", ""}, // Go grows its own stack until the memory limit: any failure
				{`{"do":"alloc"}`, "", ""},
				{`{"do":"big","n":5000}`, "", ""},
			} {
				_, logs, err := invoke(t, m, tc.do)
				var f *Failure
				if !errors.As(err, &f) {
					t.Fatalf("%s: %v, want a failure", tc.do, err)
				}
				if tc.kind != "" && (f.Kind != tc.kind || !strings.Contains(f.Message, tc.msg)) {
					t.Fatalf("%s: %s %q, want %s %q (log %s)", tc.do, f.Kind, f.Message, tc.kind, tc.msg, logs.text())
				}
				// The module still works after each failure.
				if res, _, err := invoke(t, m, `{"do":"echo"}`); err != nil || body(t, res)["env"] != "hello" {
					t.Fatalf("after %s: %v %v", tc.do, res, err)
				}
			}
		})
	}
}

func TestStderrToLog(t *testing.T) {
	m := compile(t, Reactor, Limits{})
	_, logs, err := invoke(t, m, `{"do":"stderr"}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := logs.text(); !strings.Contains(got, "to stderr") || !strings.Contains(got, "to the log") {
		t.Fatalf("log: %q", got)
	}
	_, logs, _ = invoke(t, m, `{"do":"panic"}`)
	if !strings.Contains(logs.text(), "panic: asked to panic") || !strings.Contains(logs.text(), "goroutine") {
		t.Fatalf("a panic's stack is not in the log: %q", logs.text())
	}
}

func TestConcurrentCalls(t *testing.T) {
	m := compile(t, Reactor, Limits{MaxInstances: 3})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Go(func() {
			if _, _, err := invoke(t, m, `{"do":"echo"}`); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := len(m.idle); n < 1 || n > 3 {
		t.Fatalf("%d idle instances, want 1 to 3", n)
	}
}
