package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
	"github.com/mantlehq/mantle/internal/store"
	"github.com/mantlehq/mantle/internal/store/storetest"
	"github.com/ncruces/go-sqlite3/vfs"
)

// memFile is a vfs.File in memory that counts the writes reaching it.
type memFile struct {
	vfs.File // nil: methods the tests do not call
	data     []byte
	writes   int
	syncs    int
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.writes++
	if end := int(off) + len(p); end > len(m.data) {
		m.data = append(m.data, make([]byte, end-len(m.data))...)
	}
	return copy(m.data[off:], p), nil
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) { return copy(p, m.data[off:]), nil }
func (m *memFile) Sync(vfs.SyncFlag) error                 { m.syncs++; return nil }
func (m *memFile) Size() (int64, error)                    { return int64(len(m.data)), nil }
func (m *memFile) Truncate(n int64) error                  { m.data = m.data[:n]; return nil }
func (m *memFile) Close() error                            { return nil }

func TestWALFileGathersFrames(t *testing.T) {
	m := &memFile{}
	w := &walFile{File: m}
	want := make([]byte, 0, 10*(24+4096))
	for i := range 10 { // ten frames, each a header and a page
		hdr := bytes.Repeat([]byte{byte(i)}, 24)
		page := bytes.Repeat([]byte{byte(100 + i)}, 4096)
		w.WriteAt(hdr, int64(len(want)))
		want = append(want, hdr...)
		w.WriteAt(page, int64(len(want)))
		want = append(want, page...)
	}
	if m.writes != 0 {
		t.Fatalf("%d writes reached the file before the sync", m.writes)
	}
	// SQLite rewrites a frame of the same transaction in place.
	fix := bytes.Repeat([]byte{0xEE}, 4096)
	w.WriteAt(fix, 24)
	copy(want[24:], fix)
	if err := w.Sync(vfs.SYNC_FULL); err != nil {
		t.Fatal(err)
	}
	if m.writes != 1 || m.syncs != 1 || !bytes.Equal(m.data, want) {
		t.Fatalf("after sync: %d writes, %d syncs, file equal: %v", m.writes, m.syncs, bytes.Equal(m.data, want))
	}

	// A read sees what was buffered; a write elsewhere flushes the run first.
	w.WriteAt([]byte("abc"), int64(len(want)))
	got := make([]byte, 3)
	if _, err := w.ReadAt(got, int64(len(want))); err != nil || string(got) != "abc" {
		t.Fatalf("read back %q, %v", got, err)
	}
	w.WriteAt([]byte("x"), 0)
	w.WriteAt([]byte("yz"), 100)
	if n, _ := w.Size(); n != int64(len(want)+3) || m.data[0] != 'x' || string(m.data[100:102]) != "yz" {
		t.Fatalf("size %d, data[0] %q, data[100:102] %q", n, m.data[0], m.data[100:102])
	}
}

// TestWALRestartsUnderLoad writes without pause and finishes a checkpoint
// meanwhile: the WAL must then start again from its beginning, so its
// frame count drops to what was written since (without the restart it
// only ever grows until SQLite's backstop checkpoint).
func TestWALRestartsUnderLoad(t *testing.T) {
	dir := t.TempDir()
	// The background checkpointer would restart the WAL on its own: the
	// test drives the checkpoints.
	db, err := Open(context.Background(), dir, Options{manualCheckpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	s := storetest.Fixture()
	c := s.Collections[0]
	if err := db.Write(ctx, func(tx store.Tx) error { return tx.Migrate(nil, s, schema.Diff(nil, s)) }); err != nil {
		t.Fatal(err)
	}
	insert := func(i int) error {
		id := fmt.Sprintf("r%06d", i)
		now := time.Now().UTC()
		return db.Write(ctx, func(tx store.Tx) error {
			if err := tx.Insert(c, &schema.Record{ID: id, CreatedAt: now, UpdatedAt: now, Version: 1, Data: map[string]any{"name": id}}); err != nil {
				return err
			}
			return tx.Append(&eventlog.Event{Type: eventlog.RecordCreated, Collection: c.Name, Subject: id, Time: now})
		})
	}
	cdb, err := driverOpen(db.path)
	if err != nil {
		t.Fatal(err)
	}
	defer cdb.Close()
	// Fill the WAL past restartFrames (a checkpoint now would let the
	// next write restart it: count the frames by the file's size).
	walFrames := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, FileName+"-wal"))
		if err != nil {
			t.Fatal(err)
		}
		return (fi.Size() - 32) / (24 + 4096)
	}
	for i := 0; walFrames() < restartFrames; i++ {
		if err := insert(i); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := checkpoint(cdb)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // writes keep coming while the checkpoint runs
		defer wg.Done()
		for i := 1000000; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := insert(i); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	frames, copied := db.restartWAL(cdb, before)
	close(stop)
	wg.Wait()
	// The WAL may already have restarted during the passes before the
	// lock (a write began when everything was copied): frames < before.
	if before < restartFrames || copied != frames {
		t.Fatalf("finishing the checkpoint copied %d of %d frames (%d before)", copied, frames, before)
	}
	if err := insert(2000000); err != nil {
		t.Fatal(err)
	}
	after, _ := checkpoint(cdb)
	if after > 20 {
		t.Fatalf("the WAL holds %d frames after the restart, %d before it", after, frames)
	}
	if fi, err := os.Stat(filepath.Join(dir, FileName+"-wal")); err != nil || fi.Size() == 0 {
		t.Fatalf("WAL file: %v", err)
	}
}
