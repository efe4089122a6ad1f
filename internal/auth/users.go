package auth

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/mantlehq/mantle"
	"github.com/mantlehq/mantle/internal/engine"
	"github.com/mantlehq/mantle/internal/eventlog"
	"github.com/mantlehq/mantle/internal/schema"
)

// user is what tokens are made from.
type user struct {
	ID    string
	Email string
	Roles []string
	JSON  json.RawMessage // the record, as the API shows it
}

func userOf(c *schema.Collection, r *schema.Record) user {
	u := user{ID: r.ID, JSON: c.MarshalRecord(r), Roles: []string{}}
	u.Email, _ = r.Data["email"].(string)
	if raw, ok := r.Data[schema.RolesField].(json.RawMessage); ok {
		json.Unmarshal(raw, &u.Roles)
	}
	return u
}

func (s *Service) loadUser(ctx context.Context, id string) (user, error) {
	r, err := s.eng.GetTrusted(ctx, schema.UsersCollection, id)
	if err != nil {
		return user{}, err
	}
	c, err := s.eng.Collection(schema.UsersCollection)
	if err != nil {
		return user{}, err
	}
	return userOf(c, r), nil
}

// NormalizeEmail trims and lower-cases an address and checks its form
// (schema.NormalizeEmail), as an auth.invalid_email error.
func NormalizeEmail(email string) (string, error) {
	e, ok := schema.NormalizeEmail(email)
	if !ok {
		return "", mantle.FieldError("auth.invalid_email", "email is not a valid address", map[string]string{"email": "not a valid address"})
	}
	return e, nil
}

// SignupInput is a sign-up: the password and the user's fields.
type SignupInput struct {
	Password string
	Fields   map[string]json.RawMessage // email and any field of the users collection but roles
	IP       string
}

// Signup creates a user. Roles cannot be chosen at sign-up.
func (s *Service) Signup(ctx context.Context, in SignupInput) (json.RawMessage, error) {
	var email string
	if raw, ok := in.Fields["email"]; ok {
		json.Unmarshal(raw, &email)
	}
	if err := s.throttle.signup(in.IP, strings.ToLower(strings.TrimSpace(email))); err != nil {
		return nil, err
	}
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if _, ok := in.Fields[schema.RolesField]; ok {
		return nil, &mantle.Error{Code: mantle.PermissionDenied, Reason: "auth.roles_protected",
			Message: "roles are given by administrators, not chosen at sign-up", Fields: map[string]string{"roles": "not allowed at sign-up"}}
	}
	if err := checkPassword(in.Password); err != nil {
		return nil, err
	}
	hash, err := HashPassword(in.Password)
	if err != nil {
		return nil, err
	}
	fields := make(map[string]json.RawMessage, len(in.Fields))
	for k, v := range in.Fields {
		fields[k] = v
	}
	fields["email"], _ = json.Marshal(email)
	res, err := s.eng.WriteWith(ctx, []engine.Op{{Kind: engine.Create, Collection: schema.UsersCollection, Data: fields, Trusted: true}},
		func(tx engine.SystemTx, res []engine.Result) error {
			id := res[0].Record.ID
			if err := tx.PutSecret(KindPassword, id, []byte(hash)); err != nil {
				return err
			}
			data, _ := json.Marshal(map[string]string{"user": id, "email": email, "ip": in.IP})
			return tx.Append(&eventlog.Event{Type: eventlog.AuthSignup, Subject: id, Actor: id, Time: res[0].Record.CreatedAt, Data: data})
		})
	if err != nil {
		if me := mantle.AsError(err); me != nil && me.Code == mantle.Conflict {
			return nil, mantle.Errorf(mantle.Conflict, "auth.email_taken", "an account with this email exists; sign in instead")
		}
		return nil, err
	}
	return res[0].JSON, nil
}

// Tokens is the answer of a login or refresh.
type Tokens struct {
	AccessToken  string          `json:"accessToken"`
	RefreshToken string          `json:"refreshToken"`
	ExpiresIn    int64           `json:"expiresIn"` // seconds
	User         json.RawMessage `json:"user"`
}

func (s *Service) tokens(u user, sid, refresh string) (*Tokens, error) {
	access, err := s.issueAccess(u, sid)
	if err != nil {
		return nil, err
	}
	return &Tokens{AccessToken: access, RefreshToken: refresh, ExpiresIn: int64(s.cfg.AccessTTL / 1e9), User: u.JSON}, nil
}

var errLogin = mantle.Errorf(mantle.Unauthenticated, "auth.invalid_credentials", "wrong email or password")

// Login checks an email and password and starts a session. An unknown
// email and a wrong password get the same answer after the same work.
func (s *Service) Login(ctx context.Context, email, password, ip string) (*Tokens, error) {
	key := strings.ToLower(strings.TrimSpace(email))
	if err := s.throttle.login(ctx, ip, key); err != nil {
		return nil, err
	}
	u, ok := s.checkPassword(ctx, key, password)
	if !ok {
		data, _ := json.Marshal(map[string]string{"email": key, "ip": ip})
		if err := s.eng.Audit(ctx, &eventlog.Event{Type: eventlog.AuthLoginFailed, Subject: u.ID, Time: s.cfg.Now(), Data: data}); err != nil {
			return nil, err
		}
		return nil, errLogin
	}
	return s.session(ctx, u, ip)
}

// session starts a session for a user whose credentials were checked and
// returns its tokens, logging auth.login.
func (s *Service) session(ctx context.Context, u user, ip string) (*Tokens, error) {
	var sid, refresh string
	err := s.eng.Transact(ctx, func(tx engine.SystemTx) error {
		var err error
		if sid, refresh, err = s.newSession(tx, u.ID); err != nil {
			return err
		}
		data, _ := json.Marshal(map[string]string{"user": u.ID, "session": sid, "ip": ip})
		return tx.Append(&eventlog.Event{Type: eventlog.AuthLogin, Subject: u.ID, Actor: u.ID, Time: s.cfg.Now(), Data: data})
	})
	if err != nil {
		return nil, err
	}
	s.signedIn(ctx)
	return s.tokens(u, sid, refresh)
}

// StartSession signs in a user who just signed up (sign-up with tokens):
// a session and its tokens, as a login gives.
func (s *Service) StartSession(ctx context.Context, userID, ip string) (*Tokens, error) {
	u, err := s.loadUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	return s.session(ctx, u, ip)
}

// checkPassword finds the user and verifies the password, hashing once
// whether or not the user exists. The user's id is set when it exists.
func (s *Service) checkPassword(ctx context.Context, email, password string) (user, bool) {
	hash := dummyHash()
	var u user
	found := false
	if len(password) <= MaxPasswordLength {
		if r, err := s.eng.FindBy(ctx, schema.UsersCollection, "email", email); err == nil {
			c, _ := s.eng.Collection(schema.UsersCollection)
			u = userOf(c, r)
			if h, err := s.eng.Secret(ctx, KindPassword, r.ID); err == nil {
				hash, found = string(h), true
			}
		}
	}
	ok, err := VerifyPassword(hash, password)
	return u, ok && err == nil && found
}

// SetPassword sets a user's password. The user's sessions end and the
// access tokens issued before are void from then on, on every node
// (auth.password_changed), and their streams end: whoever knew the old
// password is out.
func (s *Service) SetPassword(ctx context.Context, userID, password string) error {
	if err := checkPassword(password); err != nil {
		return err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	sessions, err := s.eng.Secrets(ctx, KindSession)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	var ended []string
	err = s.eng.Transact(ctx, func(tx engine.SystemTx) error {
		if err := tx.PutSecret(KindPassword, userID, []byte(hash)); err != nil {
			return err
		}
		if ended, err = endSessions(tx, sessions, userID, now); err != nil {
			return err
		}
		if err := engine.VoidCredentials(tx, userID, now); err != nil {
			return err
		}
		data, _ := json.Marshal(map[string]any{"user": userID, "sessionsEnded": len(ended)})
		return tx.Append(&eventlog.Event{Type: eventlog.AuthPasswordChanged, Subject: userID, Actor: mantle.IdentityFrom(ctx).ID, Time: now, Data: data})
	})
	if err != nil {
		return err
	}
	for _, sid := range ended {
		s.revoke(sid, now)
	}
	return nil
}

// CreateUser creates a user with a password and roles, as an
// administrator would (the CLI's users create).
func (s *Service) CreateUser(ctx context.Context, email, password string, roles []string) (json.RawMessage, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	hash, err := HashPassword(password)
	if err != nil {
		return nil, err
	}
	fields := map[string]json.RawMessage{}
	fields["email"], _ = json.Marshal(email)
	if len(roles) > 0 {
		fields[schema.RolesField], _ = json.Marshal(roles)
	}
	res, err := s.eng.WriteWith(ctx, []engine.Op{{Kind: engine.Create, Collection: schema.UsersCollection, Data: fields, Trusted: true}},
		func(tx engine.SystemTx, res []engine.Result) error {
			return tx.PutSecret(KindPassword, res[0].Record.ID, []byte(hash))
		})
	if err != nil {
		if me := mantle.AsError(err); me != nil && me.Code == mantle.Conflict {
			return nil, mantle.Errorf(mantle.Conflict, "auth.email_taken", "a user with email %s exists", email)
		}
		return nil, err
	}
	return res[0].JSON, nil
}
