package fn

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

// Log levels of function log lines.
const (
	LevelDebug = 0
	LevelInfo  = 1
	LevelWarn  = 2
	LevelError = 3
)

// maxStdio bounds what one call may write to stderr (and, for a reactor,
// stdout) into the log; the rest is dropped with a note.
const maxStdio = 64 << 10

// stdio receives an instance's stdout and stderr. Lines go to the log of
// the call being served; a command's stdout is kept as its output when it
// does not call output.
type stdio struct {
	mu      sync.Mutex
	cur     *call
	capture bool // stdout is the output (a command)
	max     int
	stdout  bytes.Buffer
	over    bool
	partial [2]bytes.Buffer // unterminated lines of stdout, stderr
	written int
	dropped bool
}

func (s *stdio) set(c *call) {
	s.mu.Lock()
	s.cur, s.written, s.dropped = c, 0, false
	s.mu.Unlock()
}

func (s *stdio) out() io.Writer { return writerFunc(func(p []byte) { s.write(0, p) }) }
func (s *stdio) err() io.Writer { return writerFunc(func(p []byte) { s.write(1, p) }) }

func (s *stdio) write(stream int, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if stream == 0 && s.capture {
		if s.stdout.Len()+len(p) > s.max {
			s.over = true
			return
		}
		s.stdout.Write(p)
		return
	}
	if s.written+len(p) > maxStdio {
		if !s.dropped && s.cur != nil {
			s.cur.log(LevelWarn, fmt.Sprintf("more than %d bytes of output in one call; the rest is dropped", maxStdio))
		}
		s.dropped = true
		return
	}
	s.written += len(p)
	buf := &s.partial[stream]
	buf.Write(p)
	for {
		line, err := buf.ReadBytes('\n')
		if err != nil { // no newline yet: keep the rest for later
			rest := append([]byte(nil), line...)
			buf.Reset()
			buf.Write(rest)
			return
		}
		s.emit(stream, line[:len(line)-1])
	}
}

func (s *stdio) emit(stream int, line []byte) {
	if s.cur == nil {
		return
	}
	level := LevelInfo
	if stream == 1 {
		level = LevelWarn // stderr
	}
	s.cur.log(level, sanitize(line))
}

// flushStdio logs unterminated lines of a finished call.
func (c *call) flushStdio(s *stdio) {
	s.mu.Lock()
	defer s.mu.Unlock()
	saved := s.cur
	s.cur = c
	for i := range s.partial {
		if s.partial[i].Len() > 0 {
			s.emit(i, s.partial[i].Bytes())
			s.partial[i].Reset()
		}
	}
	s.cur = saved
}

type writerFunc func(p []byte)

func (f writerFunc) Write(p []byte) (int, error) { f(p); return len(p), nil }

// errorMessage returns the message of an {"error": "…"} output.
func errorMessage(out []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(out, &e) != nil {
		return ""
	}
	return e.Error
}
