package webhook_test

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/testenv"
)

// npmReceiver installs standardwebhooks@1.1.1 (once, in the user's cache)
// beside testdata/receiver.mjs and returns the folder to run it from.
func npmReceiver(t *testing.T) string {
	t.Helper()
	npm, err := exec.LookPath("npm")
	if err != nil {
		testenv.SkipOrFail(t, "standardwebhooks", "npm is not installed")
	}
	if _, err := exec.LookPath("node"); err != nil {
		testenv.SkipOrFail(t, "standardwebhooks", "node is not installed")
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "mantle-test", "standardwebhooks-1.1.1")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks", "package.json")); err != nil {
		os.MkdirAll(dir, 0o755)
		cmd := exec.Command(npm, "install", "--no-audit", "--no-fund", "--prefix", dir, "standardwebhooks@1.1.1")
		if out, err := cmd.CombinedOutput(); err != nil {
			testenv.SkipOrFail(t, "standardwebhooks", "npm install standardwebhooks@1.1.1 failed: "+string(out))
		}
	}
	src, err := os.ReadFile("testdata/receiver.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "receiver.mjs"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

type line struct {
	ID    string
	Seq   int64
	Error string
	Ready bool
}

// nodeReceiver runs the receiver on port and streams its lines.
func nodeReceiver(t *testing.T, dir string, port int, out chan<- line) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("node", "receiver.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SECRET="+secret, "PORT="+strconv.Itoa(port))
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l line
			json.Unmarshal(sc.Bytes(), &l)
			if l.Ready {
				close(ready)
				continue
			}
			out <- l
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the node receiver did not start")
	}
	return cmd
}

// The official Standard Webhooks verifier accepts every delivery; the
// receiver goes down mid-stream and comes back, and every event arrives,
// in order.
func TestStandardWebhooksReceiver(t *testing.T) {
	dir := npmReceiver(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	lines := make(chan line, 1000)
	recv := nodeReceiver(t, dir, port, lines)
	defer func() { recv.Process.Kill(); recv.Wait() }()

	// Retries must outlast the receiver's absence: many attempts.
	proj := project("http://127.0.0.1:"+strconv.Itoa(port)+"/hook", "maxAttempts: 100, retryMin: 20ms, retryMax: 200ms")
	s := start(t, proj)
	want := create(t, s, 20)
	seen := map[string]bool{}
	var order []int64
	collect := func(n int) {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for len(order) < n {
			select {
			case l := <-lines:
				if l.Error != "" {
					t.Fatalf("the official verifier refused a delivery: %s", l.Error)
				}
				if !seen[l.ID] { // at least once: dedupe by webhook-id, as receivers do
					seen[l.ID] = true
					order = append(order, l.Seq)
				}
			case <-timeout:
				t.Fatalf("received %d of %d events", len(order), n)
			}
		}
	}
	collect(10)
	recv.Process.Kill() // the receiver goes down mid-stream
	recv.Wait()
	want = append(want, create(t, s, 20)...)
	recv = nodeReceiver(t, dir, port, lines)
	collect(len(want))
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order: got %v, want %v", order, want)
		}
	}
}
