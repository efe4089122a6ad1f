// Package fntest helps tests that run functions: a compilation cache
// shared by every test on the machine, and a way to fill it quickly when
// the tests run with the race detector (which makes wazero's compiler
// about ten times slower).
package fntest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// CacheDir is the shared compilation cache of tests: compiled modules
// are keyed by their bytes, so tests of any package share them, and a
// second run compiles nothing.
func CacheDir() string {
	return filepath.Join(os.TempDir(), "mantle-test-wasm-cache-"+strconv.Itoa(os.Getuid()))
}

var (
	mu   sync.Mutex
	done = map[string]bool{}
)

// Precompile fills CacheDir with the functions of the project in dir.
// Under the race detector it runs `mantle plan` built without it (the go
// command builds it once); otherwise it does nothing, as compiling in the
// test is as quick.
func Precompile(t testing.TB, dir string) {
	t.Helper()
	if !raceEnabled {
		return
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if done[abs] {
		return
	}
	// wazero keys its cache by its version, which it reads from the
	// build info; a test binary has none ("dev"), so the helper is told to
	// use the same one.
	ldflags := "-X=github.com/tetratelabs/wazero/internal/version.version=" + wazeroVersion()
	cmd := exec.Command("go", "run", "-ldflags="+ldflags, "github.com/mantlehq/mantle/cmd/mantle", "plan", "--project", abs, "--data", t.TempDir(), "--wasm-cache", CacheDir())
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOFLAGS=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil { // the test itself will meet the error, if it matters
		t.Logf("precompile the functions of %s: %v\n%s", dir, err, out.String())
	}
	done[abs] = true
}

// wazeroVersion is the version wazero sees in this binary.
func wazeroVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/tetratelabs/wazero" && d.Version != "" && d.Version != "(devel)" {
				return d.Version
			}
		}
	}
	return "dev"
}
