package auth

import (
	"math"
	"strconv"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/gateway"
)

// ThrottleConfig sets how many sign-in attempts are allowed per minute,
// with bursts of the same size. Zero takes the default.
type ThrottleConfig struct {
	LoginPerIP       int // default 20
	LoginPerAccount  int // default 10
	SignupPerIP      int // default 10
	SignupPerAccount int // default 3
}

type throttles struct {
	loginIP, loginAccount, signupIP, signupAccount *gateway.Limiter
}

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func newThrottles(c ThrottleConfig) *throttles {
	mk := func(n int) *gateway.Limiter { return gateway.NewLimiter(float64(n), n) }
	return &throttles{
		loginIP:       mk(orDefault(c.LoginPerIP, 20)),
		loginAccount:  mk(orDefault(c.LoginPerAccount, 10)),
		signupIP:      mk(orDefault(c.SignupPerIP, 10)),
		signupAccount: mk(orDefault(c.SignupPerAccount, 3)),
	}
}

// RateLimited is the 429 problem, with the seconds to wait.
func RateLimited(wait time.Duration, what string) error {
	secs := int(math.Ceil(wait.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &mantle.Error{Code: mantle.RateLimited, Reason: "auth.throttled",
		Message: "too many " + what + " attempts; retry in " + strconv.Itoa(secs) + "s", RetryAfter: secs}
}

func (t *throttles) check(what string, pairs ...any) error {
	for i := 0; i < len(pairs); i += 2 {
		l, key := pairs[i].(*gateway.Limiter), pairs[i+1].(string)
		if key == "" {
			continue
		}
		if ok, wait := l.Allow(key); !ok {
			return RateLimited(wait, what)
		}
	}
	return nil
}

func (t *throttles) login(ip, account string) error {
	return t.check("sign-in", t.loginIP, ip, t.loginAccount, account)
}

func (t *throttles) signup(ip, account string) error {
	return t.check("sign-up", t.signupIP, ip, t.signupAccount, account)
}
