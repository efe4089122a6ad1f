package auth

import (
	"context"
	"math"
	"strconv"
	"time"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/gateway"
)

// ThrottleConfig sets how many sign-in attempts are allowed per minute,
// with bursts of the same size. Zero takes the default.
type ThrottleConfig struct {
	LoginPerIP int // default 20
	// LoginPerAccount is per account and address (default 10): an
	// attacker guessing from one address is stopped, and the owner
	// signing in from another is not. Across all addresses an account
	// takes five times that before its sign-ins are slowed down (see
	// maxSlowdown), never locked.
	LoginPerAccount  int
	SignupPerIP      int // default 10
	SignupPerAccount int // default 3
}

type throttles struct {
	loginIP, loginPair, loginAccount, signupIP, signupAccount *gateway.Limiter
	oidcIP                                                    *gateway.Limiter // OIDC sign-ins started, per address
}

// maxSlowdown is the longest a sign-in waits when its account is
// attacked from many addresses: slow enough to turn a distributed guess
// into a crawl, short enough that the owner still gets in.
const maxSlowdown = 2 * time.Second

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
		oidcIP:        mk(orDefault(c.LoginPerIP, 20)),
		loginPair:     mk(orDefault(c.LoginPerAccount, 10)),
		loginAccount:  mk(5 * orDefault(c.LoginPerAccount, 10)),
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

// login refuses a sign-in over the address's limit or the limit of the
// account from this address (429), and slows down one over the
// account's limit across all addresses by up to maxSlowdown.
func (t *throttles) login(ctx context.Context, ip, account string) error {
	pair := ""
	if account != "" {
		pair = account + "\x00" + ip
	}
	if err := t.check("sign-in", t.loginIP, ip, t.loginPair, pair); err != nil {
		return err
	}
	if account == "" {
		return nil
	}
	if ok, wait := t.loginAccount.Allow(account); !ok {
		timer := time.NewTimer(min(wait, maxSlowdown))
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (t *throttles) signup(ip, account string) error {
	return t.check("sign-up", t.signupIP, ip, t.signupAccount, account)
}
