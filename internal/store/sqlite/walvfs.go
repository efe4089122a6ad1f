package sqlite

import (
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3/vfs"
)

// SQLite writes every WAL frame with two pwrite calls, a 24-byte header
// and the page, and a commit of a dozen records writes thirty or more
// frames: sixty system calls, which cost the writer goroutine (the one
// every write waits for) about a fifth of its time. The writer's
// connection therefore opens its WAL through walVFS, which gathers the
// frames of a transaction in memory and hands them to the kernel in one
// pwrite when SQLite syncs the WAL at commit (or reads it back, truncates
// it, or asks its size).
//
// Durability is unchanged: SQLite counts nothing as committed before the
// WAL's fsync returns, and the fsync comes after the flush; other
// connections only read frames that a committed WAL-index header points
// to, and that header is written after the sync. A write error surfaces
// from the sync instead of the write, and SQLite rolls the transaction
// back either way.
//
// It depends on synchronous=FULL (open sets it): with NORMAL, SQLite does
// not sync the WAL at commit, so the buffer would not be flushed before
// other connections read the frames (a server built that way failed at
// its first read).
//
// No library offers this (ncruces/go-sqlite3's VFS package is the
// extension point meant for it), so it is written here.
//
// The WAL's sync at commit is also where the writer goroutine waits for
// the disk; walFile makes it as fdatasyncHeld (walsync_linux.go) while
// the disk is quick.
const (
	walVFSName   = "mantle-wal"
	walBufferMax = 4 << 20 // a larger run of frames goes to the file as it comes
)

// Syncs are held while the moving average of the WAL's sync times is
// under heldUnder. A disk in trouble (syncs of tens of milliseconds and
// more) raises the average within a few syncs and the syncs become
// blocking calls, so that the collector's pauses do not wait for such a
// disk; one slow sync among fast ones (a checkpoint's, say) does not.
const heldUnder = 5 * time.Millisecond

var registerWALVFS sync.Once

// walVFS is the operating system VFS with buffered WAL writes.
type walVFS struct {
	vfs.VFSFilename
}

func useWALVFS() string {
	registerWALVFS.Do(func() {
		vfs.Register(walVFSName, walVFS{vfs.Find("os").(vfs.VFSFilename)})
	})
	return walVFSName
}

// OpenFilename implements vfs.VFSFilename.
func (v walVFS) OpenFilename(name *vfs.Filename, flags vfs.OpenFlag) (vfs.File, vfs.OpenFlag, error) {
	f, flags, err := v.VFSFilename.OpenFilename(name, flags)
	if err == nil && flags&vfs.OPEN_WAL != 0 {
		fd := fileFD(f)
		f = &walFile{File: f, fd: fd, held: fd >= 0}
	}
	return f, flags, err
}

// walFile buffers one contiguous run of writes and syncs the WAL.
type walFile struct {
	vfs.File
	buf []byte
	off int64 // the file offset of buf[0]

	fd     int           // the file's descriptor for held syncs
	held   bool          // fd is set: syncs may be held
	synced bool          // a sync through File succeeded (it also syncs a new WAL's directory)
	avg    time.Duration // moving average of the sync times, 1/16 to the newest
}

// Unwrap implements vfs.FileUnwrap.
func (w *walFile) Unwrap() vfs.File { return w.File }

// WriteAt implements vfs.File: a write that continues the buffered run,
// or overwrites part of it (SQLite rewrites a frame of the same
// transaction in place), goes into the buffer; any other flushes it.
func (w *walFile) WriteAt(p []byte, off int64) (int, error) {
	end := w.off + int64(len(w.buf))
	switch {
	case len(w.buf) > 0 && off == end && len(w.buf)+len(p) <= walBufferMax:
		w.buf = append(w.buf, p...)
		return len(p), nil
	case len(w.buf) > 0 && off >= w.off && off+int64(len(p)) <= end:
		copy(w.buf[off-w.off:], p)
		return len(p), nil
	}
	if err := w.flush(); err != nil {
		return 0, err
	}
	if len(p) >= walBufferMax {
		return w.File.WriteAt(p, off)
	}
	w.off = off
	w.buf = append(w.buf[:0], p...)
	return len(p), nil
}

func (w *walFile) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.File.WriteAt(w.buf, w.off)
	w.buf = w.buf[:0]
	if cap(w.buf) > walBufferMax {
		w.buf = nil
	}
	return err
}

// ReadAt implements vfs.File.
func (w *walFile) ReadAt(p []byte, off int64) (int, error) {
	if err := w.flush(); err != nil {
		return 0, err
	}
	return w.File.ReadAt(p, off)
}

// Sync implements vfs.File. The first sync of a WAL goes through File,
// which also syncs the directory of a WAL it just created; later ones are
// held syncs while the disk is quick (heldUnder).
func (w *walFile) Sync(flags vfs.SyncFlag) error {
	if err := w.flush(); err != nil {
		return err
	}
	t0 := time.Now()
	var err error
	if w.held && w.synced && w.avg < heldUnder {
		err = fdatasyncHeld(w.fd)
	} else {
		err = w.File.Sync(flags)
		w.synced = w.synced || err == nil
	}
	w.avg += (time.Since(t0) - w.avg) / 16
	return err
}

// Truncate implements vfs.File.
func (w *walFile) Truncate(size int64) error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.File.Truncate(size)
}

// Size implements vfs.File.
func (w *walFile) Size() (int64, error) {
	if err := w.flush(); err != nil {
		return 0, err
	}
	return w.File.Size()
}

// Close implements vfs.File.
func (w *walFile) Close() error {
	err := w.flush()
	if cerr := w.File.Close(); err == nil {
		err = cerr
	}
	return err
}
