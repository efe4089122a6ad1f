package fn

import (
	"slices"
	"sync"
	"time"
)

// LogLine is one line of a function's log.
type LogLine struct {
	N       int64     `json:"n"` // grows by one per line; ?after=N resumes
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Trigger string    `json:"trigger"`
	Message string    `json:"message"`
}

var levelNames = [...]string{"debug", "info", "warn", "error"}

// logRing keeps a function's most recent log lines in memory.
type logRing struct {
	mu    sync.Mutex
	lines []LogLine
	keep  int
	next  int64
}

func newLogRing(keep int) *logRing { return &logRing{keep: keep, next: 1} }

func (r *logRing) add(level int, trigger, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.lines) >= r.keep {
		r.lines = slices.Delete(r.lines, 0, len(r.lines)-r.keep+1)
	}
	r.lines = append(r.lines, LogLine{N: r.next, Time: time.Now().UTC(), Level: levelNames[level], Trigger: trigger, Message: msg})
	r.next++
}

func (r *logRing) since(after int64, limit int) []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	if limit <= 0 || limit > r.keep {
		limit = r.keep
	}
	i, _ := slices.BinarySearchFunc(r.lines, after+1, func(l LogLine, n int64) int { return int(l.N - n) })
	out := slices.Clone(r.lines[i:min(len(r.lines), i+limit)])
	if out == nil {
		out = []LogLine{}
	}
	return out
}

// stats are a function's call counts and recent latencies.
type stats struct {
	mu       sync.Mutex
	calls    int64
	failures int64
	recent   []time.Duration // ring of the last 10,000
	at       int
}

func (s *stats) record(d time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if err != nil {
		s.failures++
	}
	if len(s.recent) < 10_000 {
		s.recent = append(s.recent, d)
	} else {
		s.recent[s.at] = d
		s.at = (s.at + 1) % len(s.recent)
	}
}

func (s *stats) snapshot() (calls, failures int64, p50, p99 float64) {
	calls, failures, q := s.quantiles(0.5, 0.99)
	return calls, failures, q[0], q[1]
}

// quantiles returns the counts and quantiles of the recent durations, in
// milliseconds.
func (s *stats) quantiles(qs ...float64) (calls, failures int64, out []float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out = make([]float64, len(qs))
	if len(s.recent) == 0 {
		return s.calls, s.failures, out
	}
	d := slices.Clone(s.recent)
	slices.Sort(d)
	for i, q := range qs {
		out[i] = float64(d[int(q*float64(len(d)-1))].Microseconds()) / 1000
	}
	return s.calls, s.failures, out
}
