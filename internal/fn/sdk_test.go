package fn_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestGuestSDK runs the guest SDK's own checks (sdk/go is a module of its
// own, so that guests depend on nothing else): its tests on the host, and
// go vet for wasip1, the target it is written for.
func TestGuestSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the SDK's own tests are not run")
	}
	for _, args := range [][]string{{"test", "./..."}, {"vet", "./..."}} {
		for _, goos := range []string{"", "wasip1"} {
			if goos == "wasip1" && args[0] == "test" {
				continue // its tests are host tests
			}
			cmd := exec.Command("go", args...)
			cmd.Dir = "../../sdk/go"
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "GOFLAGS=") && !strings.HasPrefix(kv, "GOOS=") && !strings.HasPrefix(kv, "GOARCH=") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			if goos != "" {
				cmd.Env = append(cmd.Env, "GOOS=wasip1", "GOARCH=wasm")
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go %s (GOOS=%s) in sdk/go: %v\n%s", strings.Join(args, " "), goos, err, out)
			}
		}
	}
}
