// Package mantle holds the shared vocabulary of the Mantle backend: the
// error type with its codes and reasons, record ids, and the caller's
// identity. Everything else lives under internal/.
package mantle

import (
	"errors"
	"fmt"
	"net/http"
)

// Code is the coarse class of an error. Each code maps to one HTTP status.
type Code string

// The error codes of API.md.
const (
	Invalid            Code = "invalid"
	Unauthenticated    Code = "unauthenticated"
	PermissionDenied   Code = "permission_denied"
	NotFound           Code = "not_found"
	Conflict           Code = "conflict"
	FailedPrecondition Code = "failed_precondition"
	RateLimited        Code = "rate_limited"
	Internal           Code = "internal"
	// Unavailable is an addition to API.md: a service Mantle depends on
	// (an OIDC provider) cannot be reached; retry later. 503.
	Unavailable Code = "unavailable"
)

// Status returns the HTTP status of the code.
func (c Code) Status() int {
	switch c {
	case Invalid:
		return http.StatusBadRequest
	case Unauthenticated:
		return http.StatusUnauthorized
	case PermissionDenied:
		return http.StatusForbidden
	case NotFound:
		return http.StatusNotFound
	case Conflict:
		return http.StatusConflict
	case FailedPrecondition:
		return http.StatusPreconditionFailed
	case RateLimited:
		return http.StatusTooManyRequests
	case Unavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Error is the one error type that crosses package boundaries. Anything
// that is not an *Error is treated as Internal.
type Error struct {
	Code    Code
	Reason  string            // stable, finer-grained, e.g. "record.version_mismatch"
	Message string            // human readable; becomes the problem's detail
	Fields  map[string]string // per-field problems, keyed by field path
	Status  int               // optional override of Code.Status (413, 415)
	// RetryAfter is the seconds a rate-limited caller should wait
	// (the Retry-After header); 0 means 1.
	RetryAfter int
}

// Error implements error.
func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s (%s): %s", e.Code, e.Reason, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// HTTPStatus returns the status the error is rendered with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.Code.Status()
}

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an Invalid error naming the problem of each field.
func FieldError(reason, message string, fields map[string]string) *Error {
	return &Error{Code: Invalid, Reason: reason, Message: message, Fields: fields}
}

// AsError returns the *Error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// ErrorCode returns the code of err: its *Error's code, or Internal for
// any other non-nil error, or "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e := AsError(err); e != nil {
		return e.Code
	}
	return Internal
}
