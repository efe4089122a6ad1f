package sqlite

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/mantlehq/mantle/internal/store"
)

// threadNices returns the nice value of each of the process's threads.
func threadNices(t *testing.T) map[int]int {
	t.Helper()
	tasks, err := filepath.Glob("/proc/self/task/*/stat")
	if err != nil {
		t.Fatal(err)
	}
	nices := map[int]int{}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread ended meanwhile
		}
		// Fields after the command's closing parenthesis; nice is the 19th
		// field of the line, the 17th after it.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		n, err := strconv.Atoi(f[16])
		if err != nil {
			t.Fatalf("%s: nice %q: %v", p, f[16], err)
		}
		tid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		nices[tid] = n
	}
	return nices
}

func TestWriterPriority(t *testing.T) {
	db, err := Open(context.Background(), t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	nice, err := db.WriterPriority()
	nices := threadNices(t)
	if _, ok := nices[db.writerTID]; !ok {
		t.Fatalf("the writer's thread %d is not one of the process's %v", db.writerTID, nices)
	}
	if err != nil {
		if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EACCES) {
			t.Fatalf("WriterPriority: %v, want a permission error or none", err)
		}
		t.Logf("the writer was not raised (%v): this process may not lower a nice value", err)
		if nices[db.writerTID] == writerNice {
			t.Fatalf("the writer's thread is at nice %d though raising failed", writerNice)
		}
		return
	}
	if nice != writerNice {
		t.Fatalf("WriterPriority = %d, want %d", nice, writerNice)
	}
	if nices[db.writerTID] != writerNice {
		t.Fatalf("the writer's thread is at nice %d, want %d", nices[db.writerTID], writerNice)
	}
	// The writer's batches run on that thread.
	var tid int
	if err := db.Write(context.Background(), func(store.Tx) error { tid = syscall.Gettid(); return nil }); err != nil {
		t.Fatal(err)
	}
	if tid != db.writerTID {
		t.Fatalf("a write ran on thread %d, not the writer's %d", tid, db.writerTID)
	}
}
