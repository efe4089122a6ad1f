package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3/vfs"
)

// osFile is a vfs.File over a real file that counts the syncs made
// through it (the blocking path); Fd lets walFile make held syncs.
type osFile struct {
	vfs.File // nil: methods the test does not call
	f        *os.File
	syncs    int
	fail     error // the next Sync's error
}

func (o *osFile) Fd() uintptr                              { return o.f.Fd() }
func (o *osFile) WriteAt(p []byte, off int64) (int, error) { return o.f.WriteAt(p, off) }
func (o *osFile) Sync(vfs.SyncFlag) error {
	o.syncs++
	err := o.fail
	o.fail = nil
	return err
}

func TestWALSyncHeld(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "x-wal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o := &osFile{f: f, fail: errors.New("disk full")}
	fd := fileFD(o)
	if fd != int(f.Fd()) {
		t.Fatalf("fileFD = %d, want the file's descriptor %d", fd, f.Fd())
	}
	w := &walFile{File: o, fd: fd, held: true}
	sync := func(wantSyncs int) {
		t.Helper()
		w.WriteAt([]byte("frame"), 0)
		err := w.Sync(vfs.SYNC_NORMAL)
		if o.syncs != wantSyncs {
			t.Fatalf("%d syncs through the file, want %d", o.syncs, wantSyncs)
		}
		if err != nil && o.syncs != 1 {
			t.Fatalf("sync: %v", err)
		}
	}
	// Until one succeeds, syncs go through the file: the first also syncs
	// the directory of a new WAL.
	sync(1)
	sync(2)
	// Then they are held: the file's Sync is not called.
	sync(2)
	sync(2)
	// A slow disk (its average sync time over heldUnder) sends them
	// through the file until the average is low again.
	w.avg = 100 * time.Millisecond
	sync(3)
	n := 3
	for w.avg >= heldUnder && n < 200 {
		n++
		sync(n)
	}
	if w.avg >= heldUnder {
		t.Fatalf("after %d quick syncs the average is still %v", n, w.avg)
	}
	sync(n)
	sync(n)
}

// The driver's own files expose their descriptor, so the writer's WAL
// is synced held (a driver update that hid it would turn that off
// silently).
func TestWALSyncHeldOnDriverFiles(t *testing.T) {
	// A temporary file: the same type the driver opens a WAL as.
	f, _, err := vfs.Find("os").Open("", vfs.OPEN_CREATE|vfs.OPEN_READWRITE|vfs.OPEN_DELETEONCLOSE)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fd := fileFD(f); fd < 0 {
		t.Fatalf("the driver's %T has no descriptor", f)
	}
	if err := fdatasyncHeld(fileFD(f)); err != nil {
		t.Fatalf("held sync of the driver's file: %v", err)
	}
}

func TestWALSyncHeldFails(t *testing.T) {
	if err := fdatasyncHeld(-1); !errors.Is(err, syscall.EBADF) {
		t.Fatalf("a held sync of no descriptor: %v, want EBADF", err)
	}
}
