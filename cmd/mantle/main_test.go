package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashProject = `
name: crash
collections:
  items:
    fields:
      name:  { type: text, required: true }
      n:     { type: number, integer: true }
      body:  { type: text }
    indexes:
      - fields: [n]
    rules: { list: "true", view: "true", create: "true", update: "true" }
`

// buildMantle compiles this command into a temp folder, with the race
// detector when the tests have it (GOFLAGS=-race) unless env says
// otherwise.
func buildMantle(t *testing.T, env ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mantle")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type server struct {
	cmd  *exec.Cmd
	url  string
	done chan struct{}
}

// startServer runs `mantle serve` on a free port and waits for its
// "serving" line.
func startServer(t *testing.T, bin, project, data string, args ...string) *server {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--project", project, "--data", data, "--http", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "MANTLE_ADMIN_TOKEN="+adminToken)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-s.done })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("server did not start: %v", err)
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("unexpected first line: %q", line)
	}
	s.url = strings.Fields(line[i:])[0]
	go io.Copy(io.Discard, stdout)
	return s
}

// TestCrashRecovery kills the server with SIGKILL in the middle of a
// write load and proves, after a restart, that every acknowledged write is
// there with its event and that rows and events agree exactly.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the subprocess crash test in -short mode")
	}
	bin := buildMantle(t)
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "mantle.yaml"), []byte(crashProject), 0o644)
	data := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, bin, project, data)

	client := &http.Client{Timeout: 10 * time.Second}
	var mu sync.Mutex
	acked := map[string]int{}
	enough := make(chan struct{})
	var once sync.Once
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"name":"w%d-%d","n":%d,"body":"%s"}`, w, i, i, strings.Repeat("x", 300))
				resp, err := client.Post(srv.url+"/api/collections/items/records", "application/json", strings.NewReader(body))
				if err != nil {
					return // the server is gone
				}
				var rec struct {
					ID      string
					Version int
				}
				json.NewDecoder(resp.Body).Decode(&rec)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					t.Errorf("create: %d", resp.StatusCode)
					return
				}
				// Update every third record once, and count the update only when acknowledged.
				if i%3 == 0 {
					req, _ := http.NewRequest("PATCH", srv.url+"/api/collections/items/records/"+rec.ID, strings.NewReader(`{"n":-1}`))
					req.Header.Set("Content-Type", "application/json")
					if r2, err := client.Do(req); err == nil {
						if r2.StatusCode == 200 {
							rec.Version = 2
						}
						r2.Body.Close()
					}
				}
				mu.Lock()
				acked[rec.ID] = rec.Version
				if len(acked) >= 600 {
					once.Do(func() { close(enough) })
				}
				mu.Unlock()
			}
		}(w)
	}
	<-enough
	srv.cmd.Process.Signal(syscall.SIGKILL) // mid-load: writers are still sending
	<-srv.done
	stop()
	wg.Wait()

	srv2 := startServer(t, bin, project, data)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%d acknowledged writes before the kill", len(acked))
	for id, version := range acked {
		var rec struct{ Version int }
		status := getJSON(t, srv2.url+"/api/collections/items/records/"+id, &rec)
		if status != 200 || rec.Version < version {
			t.Errorf("acknowledged record %s: status %d version %d, want version >= %d", id, status, rec.Version, version)
		}
	}
	// Every row has its created event and every created event its row;
	// sequences have no gap.
	rows := map[string]int{}
	cursor := ""
	for {
		var page struct {
			Items []struct {
				ID      string
				Version int
			}
			NextCursor *string
		}
		getJSON(t, srv2.url+"/api/collections/items/records?limit=1000&fields=version"+cursor, &page)
		for _, it := range page.Items {
			rows[it.ID] = it.Version
		}
		if page.NextCursor == nil {
			break
		}
		cursor = "&cursor=" + *page.NextCursor
	}
	created, updated := map[string]bool{}, map[string]int{}
	var after, seqs int64
	for {
		var page struct {
			Events []struct {
				Seq     int64
				Type    string
				Subject string
			}
			LastSeq int64
		}
		getJSONAdmin(t, fmt.Sprintf("%s/api/events?limit=1000&after=%d", srv2.url, after), &page)
		for _, e := range page.Events {
			seqs++
			if e.Seq != seqs {
				t.Fatalf("event seq %d at position %d: a gap", e.Seq, seqs)
			}
			switch e.Type {
			case "record.created":
				created[e.Subject] = true
			case "record.updated":
				updated[e.Subject]++
			}
		}
		if len(page.Events) == 0 {
			break
		}
		after = page.LastSeq
	}
	if len(rows) != len(created) {
		t.Errorf("%d rows but %d created events", len(rows), len(created))
	}
	for id, v := range rows {
		if !created[id] {
			t.Errorf("row %s has no created event", id)
		}
		if v != 1+updated[id] {
			t.Errorf("row %s at version %d but %d update events", id, v, updated[id])
		}
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

const adminToken = "crash-test-admin"

// getJSONAdmin reads as an administrator, who sees every event.
func getJSONAdmin(t *testing.T, url string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(v)
	return resp.StatusCode
}

// TestWebhookCrashResume kills the server with SIGKILL while a webhook is
// delivering and proves that after a restart the webhook resumes from its
// cursor: every event arrives (some perhaps twice: at least once), in
// order, none skipped.
func TestWebhookCrashResume(t *testing.T) {
	bin := buildMantle(t)
	var mu sync.Mutex
	var got []int64
	seen := map[string]bool{}
	arrived := make(chan struct{}, 10000) // one per distinct event
	hold := make(chan struct{})           // the 51st delivery waits here until the server is dead
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Seq int64 }
		json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 50 {
			<-hold // in flight when the server is killed: never acknowledged
		}
		mu.Lock()
		if id := r.Header.Get("webhook-id"); !seen[id] {
			seen[id] = true
			got = append(got, ev.Seq)
			arrived <- struct{}{}
		}
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer recv.Close()
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "mantle.yaml"), []byte(crashProject+`
webhooks:
  items:
    url: `+recv.URL+`
    collections: [items]
    retryMin: 10ms
    retryMax: 100ms
`), 0o644)
	data := filepath.Join(t.TempDir(), "data")
	t.Setenv("MANTLE_WEBHOOK_ALLOW_PRIVATE", "true")
	srv := startServer(t, bin, project, data)
	var seqs []int64
	post := func(url string, i int) {
		req, _ := http.NewRequest("POST", url+"/api/collections/items/records", strings.NewReader(fmt.Sprintf(`{"name":"i%d","n":%d}`, i, i)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 201 {
			t.Fatalf("create %d: %v %v", i, resp, err)
		}
		var seq int64
		fmt.Sscan(resp.Header.Get("Mantle-Seq"), &seq)
		resp.Body.Close()
		seqs = append(seqs, seq)
	}
	for i := 0; i < 300; i++ {
		post(srv.url, i)
	}
	waitFor := func(n int) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for k := 0; k < n; k++ {
			select {
			case <-arrived:
			case <-timeout:
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("received %d distinct events, waiting for %d more", len(got), n-k)
			}
		}
	}
	waitFor(50)
	srv.cmd.Process.Signal(syscall.SIGKILL) // while delivery 51 is in flight
	<-srv.done
	close(hold)
	srv = startServer(t, bin, project, data)
	for i := 300; i < 320; i++ {
		post(srv.url, i)
	}
	waitFor(len(seqs) - 50)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(seqs) {
		t.Fatalf("received %v,\nwant %v", got, seqs)
	}
}
