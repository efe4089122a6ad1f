package auth

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/mantlehq/mantle"
	"github.com/trustelem/zxcvbn/frequency"
)

// common is the set of common passwords that are long enough to pass the
// length check: the 30,000 most frequent passwords of the zxcvbn lists
// (leaked-password corpora, maintained with zxcvbn), of which the ones of
// MinPasswordLength characters or more are kept, lower-cased.
var common = sync.OnceValue(func() map[string]struct{} {
	m := map[string]struct{}{}
	for _, p := range frequency.FrequencyLists["passwords"] {
		if utf8.RuneCountInString(p) >= MinPasswordLength {
			m[strings.ToLower(p)] = struct{}{}
		}
	}
	return m
})

func weak(reason, field string) error {
	return mantle.FieldError("auth.weak_password", reason, map[string]string{"password": field})
}

// CheckPassword is the password policy, for callers that check a password
// before doing anything else (the CLI's users create); see checkPassword.
func CheckPassword(pw string) error { return checkPassword(pw) }

// checkPassword is the password policy of every path that sets one
// (sign-up, the CLI, a reset): 8 characters to 1,024 bytes, not only
// white space, and not one of the common passwords (compared without
// letter case), as NIST SP 800-63B asks of a verifier.
func checkPassword(pw string) error {
	switch n := utf8.RuneCountInString(pw); {
	case n < MinPasswordLength:
		return weak("the password must have at least 8 characters", "at least 8 characters")
	case len(pw) > MaxPasswordLength:
		return weak("the password is longer than 1024 bytes", "at most 1024 bytes")
	}
	if strings.TrimFunc(pw, unicode.IsSpace) == "" {
		return weak("the password is only white space", "not only white space")
	}
	if _, ok := common()[strings.ToLower(pw)]; ok {
		return weak("the password is one of the most common passwords; choose another", "a common password")
	}
	return nil
}
