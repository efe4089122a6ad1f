package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// The rule workloads compare the same request on two collections of
// examples/bench that hold the same records: open (rules "true") and
// owned (rule record.owner == auth.id), as one signed-in user who owns 1%
// of them. They need the admin secret (--token) to preload users and
// records, and a server started with a sign-in limit that allows the
// login workload (--signin-limit 1000).
var ruleWorkloads = map[string]bool{"get-open": true, "get-owned": true, "list-open": true, "list-owned": true, "login": true}

// ruleState is what the rule workloads share: one user and its records.
type ruleState struct {
	email, password string
	token           string // the user's access token
	ids             []string
}

const ruleUsers = 100 // the caller owns 1 record in ruleUsers

// rulesSetup signs a user up, creates the other owners and preloads
// o.RuleRecords records into both collections.
func (r *runner) rulesSetup(ctx context.Context) error {
	if r.rules != nil {
		return nil
	}
	if r.o.Token == "" {
		return fmt.Errorf("the rule workloads need the admin secret: --token (serve with MANTLE_ADMIN_TOKEN)")
	}
	base := strings.TrimRight(r.o.URL, "/")
	st := &ruleState{email: "bench-" + r.run + "@example.com", password: "bench-password-" + r.run}
	status, body, err := r.do(ctx, "POST", base+"/api/auth/signup", []byte(fmt.Sprintf(`{"email":%q,"password":%q}`, st.email, st.password)))
	if err != nil || status != 201 {
		return fmt.Errorf("signup: %d %s %v", status, body, err)
	}
	var su struct{ User struct{ ID string } }
	json.Unmarshal(body, &su)
	owners := []string{su.User.ID}
	var b bytes.Buffer
	b.WriteString(`{"ops":[`)
	for i := 1; i < ruleUsers; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"op":"create","collection":"users","data":{"email":"bench-%s-%d@example.com"}}`, r.run, i)
	}
	b.WriteString("]}")
	status, body, err = r.do(ctx, "POST", base+"/api/batch", b.Bytes())
	if err != nil || status != 200 {
		return fmt.Errorf("create owners: %d %s %v", status, body, err)
	}
	var out struct{ Results []struct{ ID string } }
	json.Unmarshal(body, &out)
	for _, x := range out.Results {
		owners = append(owners, x.ID)
	}
	const per = 500
	for start := 0; start < r.o.RuleRecords; start += per {
		for _, coll := range []string{"open", "owned"} {
			b.Reset()
			b.WriteString(`{"ops":[`)
			for i := start; i < min(start+per, r.o.RuleRecords); i++ {
				if i > start {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"op":"create","collection":%q,"data":{"id":"r%s-%d","title":"t%d","body":%q,"views":%d,"owner":%q}}`,
					coll, r.run, i, i, r.body, rand.IntN(10000), owners[i%ruleUsers])
			}
			b.WriteString("]}")
			status, body, err = r.do(ctx, "POST", base+"/api/batch", b.Bytes())
			if err != nil || status != 200 {
				return fmt.Errorf("preload %s: %d %.300s %v", coll, status, body, err)
			}
		}
		for i := start; i < min(start+per, r.o.RuleRecords); i += ruleUsers {
			st.ids = append(st.ids, fmt.Sprintf("r%s-%d", r.run, i))
		}
	}
	if len(st.ids) == 0 {
		return fmt.Errorf("the rule workloads need at least %d records (--rule-records)", ruleUsers)
	}
	if st.token, err = r.login(ctx, st); err != nil {
		return err
	}
	r.rules = st
	return nil
}

func (r *runner) login(ctx context.Context, st *ruleState) (string, error) {
	status, body, err := r.do(ctx, "POST", strings.TrimRight(r.o.URL, "/")+"/api/auth/login",
		[]byte(fmt.Sprintf(`{"email":%q,"password":%q}`, st.email, st.password)))
	if err != nil {
		return "", err
	}
	if status == 429 {
		return "", fmt.Errorf("login throttled: serve with --signin-limit 1000 for the login workload")
	}
	if status != 200 {
		return "", fmt.Errorf("login: %d %s", status, body)
	}
	var t struct{ AccessToken string }
	json.Unmarshal(body, &t)
	return t.AccessToken, nil
}

// loginWorkload signs in one request at a time (a login costs a fixed
// amount of hashing, so p50 is the figure that matters) for o.Duration
// or 50 logins, whichever ends first.
func (r *runner) loginWorkload(ctx context.Context) (*Result, error) {
	res := &Result{}
	start := time.Now()
	for len(res.Latencies) < 50 && time.Since(start) < r.o.Duration {
		t0 := time.Now()
		if _, err := r.login(ctx, r.rules); err != nil {
			return nil, err
		}
		res.Latencies = append(res.Latencies, time.Since(t0))
	}
	res.Duration = time.Since(start)
	res.Requests = len(res.Latencies)
	slices.Sort(res.Latencies)
	return res, nil
}

// ruleRequest is one request of a rule workload, as the signed-in user.
func (r *runner) ruleRequest(c *conn, w string) bool {
	coll := "open"
	if strings.HasSuffix(w, "-owned") {
		coll = "owned"
	}
	path := "/api/collections/" + coll + "/records"
	var status int
	var err error
	if strings.HasPrefix(w, "get-") {
		status, _, err = c.do("GET", path+"/"+r.rules.ids[rand.IntN(len(r.rules.ids))], nil)
	} else {
		status, _, err = c.do("GET", fmt.Sprintf("%s?filter=views+%%3E+%d&sort=-views&limit=20", path, rand.IntN(5000)), nil)
	}
	return err == nil && status == 200
}
