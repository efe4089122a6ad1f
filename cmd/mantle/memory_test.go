package main_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// A server given a small memory budget stays within it under a load of
// creates and lists from 32 clients (20,000 records of 1 KiB, lists with
// filters that defeat the caches), measured as a user's machine sees it:
// the peak resident size of the real process. Without the governor the
// heap grows to GOGC's multiple of the live data: with it off
// (GOMEMLIMIT=off) the peak was 166 MiB.
func TestServeStaysWithinItsMemoryBudget(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the resident size is read from /proc: Linux only")
	}
	const budget = 96 << 20
	// Without the race detector, whose shadow memory would be measured
	// too (it multiplies a process's memory several times).
	bin := buildMantle(t, "GOFLAGS=")
	project := t.TempDir()
	if err := os.WriteFile(filepath.Join(project, "mantle.yaml"), []byte(crashProject), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, bin, project, t.TempDir(), "--memory-limit", strconv.Itoa(budget))
	body := strings.Repeat("x", 1024)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Go(func() {
			for i := range 625 {
				n := w*625 + i
				rec := fmt.Sprintf(`{"name":"r%d","n":%d,"body":"%s"}`, n, n, body)
				res, err := http.Post(s.url+"/api/collections/items/records", "application/json", bytes.NewBufferString(rec))
				if err != nil {
					errs <- err
					return
				}
				res.Body.Close()
				if res.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("create: %s", res.Status)
					return
				}
				res, err = http.Get(fmt.Sprintf("%s/api/collections/items/records?filter=n%%3E%d&sort=-n&perPage=50", s.url, rand.IntN(n+1)))
				if err != nil {
					errs <- err
					return
				}
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var peak int64
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			peak, _ = strconv.ParseInt(f[1], 10, 64)
			peak <<= 10
		}
	}
	t.Logf("peak resident %d MiB with a budget of %d MiB", peak>>20, budget>>20)
	if peak == 0 || peak > budget*5/4 {
		t.Fatalf("peak resident memory %d MiB; the budget is %d MiB", peak>>20, budget>>20)
	}
}
