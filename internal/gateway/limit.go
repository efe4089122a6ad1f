package gateway

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per key (an IP address, an account, an
// identity). Idle buckets are forgotten, so the number of keys an attacker
// can make up bounds nothing but a sweep.
type Limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

// maxBuckets is how many keys a limiter holds before it sweeps full
// (idle) buckets away.
const maxBuckets = 100_000

// NewLimiter allows each key perMinute events a minute on average, and
// bursts of burst.
func NewLimiter(perMinute float64, burst int) *Limiter {
	return &Limiter{rate: rate.Limit(perMinute / 60), burst: burst, now: time.Now, buckets: map[string]*rate.Limiter{}}
}

// NewRateLimiter allows each key perSecond events a second on average,
// and bursts of burst.
func NewRateLimiter(perSecond float64, burst int) *Limiter {
	return NewLimiter(perSecond*60, burst)
}

// Allow takes one token from key's bucket. When there is none it returns
// false and how long until there is.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweep(now)
		}
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[key] = b
	}
	l.mu.Unlock()
	r := b.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops buckets that have refilled: their keys are idle. If none
// has, it drops them all rather than grow without bound.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
	l.swept = now
}
