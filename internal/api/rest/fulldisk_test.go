package rest_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mantlehq/mantle/internal/apptest"
)

// tinyDisk mounts a small tmpfs for a data folder (root only; the test is
// skipped with the reason elsewhere).
func tinyDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot mount a small tmpfs for a full disk (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// When the disk fills up, writes answer 507 store.full (not 500), the
// node says it is not ready, reads go on, and once space is freed writes
// work again without a restart, with every acknowledged write kept.
func TestFullDisk(t *testing.T) {
	if os.Getenv("MANTLE_TEST_STORE") == "postgres" {
		t.Skip("skipping: the full disk is the SQLite store's; PostgreSQL's disk is the database server's")
	}
	disk := tinyDisk(t, "6m")
	proj := t.TempDir()
	s := apptest.StartDirConfig(t, writeProject(t, proj, ruled), filepath.Join(disk, "data"), nil)
	// A filler to delete later, so that space can come back.
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	post := s.Do("POST", "/api/collections/posts/records", map[string]any{"title": "p", "published": true}, "admin").JSON()["id"].(string)
	body := strings.Repeat("x", 60_000)
	var acked []string
	full := false
	for i := 0; i < 400 && !full; i++ {
		r := s.Do("POST", "/api/collections/comments/records", map[string]any{"post": post, "body": body}, "admin")
		switch r.Status {
		case 201:
			acked = append(acked, r.JSON()["id"].(string))
		case 507:
			apptest.CheckProblem(t, r, "unavailable", "store.full", nil)
			full = true
		default:
			t.Fatalf("write %d on a filling disk: %d %s", i, r.Status, r.Body)
		}
	}
	if !full {
		t.Fatal("the disk never filled up")
	}
	if r := s.Do("GET", "/api/ready", nil); r.Status != 503 || !strings.Contains(string(r.Body), "full") {
		t.Errorf("ready with a full disk: %d %s", r.Status, r.Body)
	}
	if r := s.Do("GET", "/api/collections/comments/records/"+acked[0], nil); r.Status != 200 {
		t.Errorf("a read with a full disk: %d", r.Status)
	}
	os.Remove(filler)
	if r := s.Do("GET", "/api/ready", nil); r.Status != 200 {
		t.Errorf("ready after space was freed: %d %s", r.Status, r.Body)
	}
	if r := s.Do("POST", "/api/collections/comments/records", map[string]any{"post": post, "body": "small"}, "admin"); r.Status != 201 {
		t.Errorf("a write after space was freed: %d %s", r.Status, r.Body)
	}
	for _, id := range acked {
		if r := s.Do("GET", "/api/collections/comments/records/"+id, nil); r.Status != 200 {
			t.Fatalf("acknowledged write %s lost: %d", id, r.Status)
		}
	}
}
