package auth

import (
	"strings"
	"testing"

	"github.com/mantlehq/mantle"
)

func TestPasswordPolicy(t *testing.T) {
	for pw, want := range map[string]string{
		"correct horse battery":   "",
		"Tr0ub4dor&3x":            "",
		"short":                   "at least 8 characters",
		"password":                "a common password",
		"PassWord1":               "a common password",
		"qwertyuiop":              "a common password",
		"iloveyou":                "a common password",
		"          ":              "not only white space",
		"\t\n  \u00a0\u2003  \t":  "not only white space",
		strings.Repeat("x", 1025): "at most 1024 bytes",
	} {
		got := ""
		if err := checkPassword(pw); err != nil {
			me := mantle.AsError(err)
			if me.Reason != "auth.weak_password" {
				t.Errorf("%q: reason %q", pw, me.Reason)
			}
			got = me.Fields["password"]
		}
		if got != want {
			t.Errorf("%q: %q, want %q", pw, got, want)
		}
	}
	if n := len(common()); n < 10_000 {
		t.Errorf("only %d common passwords of 8 characters or more", n)
	}
}
