package client

import (
	"fmt"

	"kvstore.dev/kvstore/wire"
)

// Error is a non-2xx answer: the request, the endpoint that answered and
// the problem body it answered with (wire.ReadProblem's, so a proxy's page
// gives one too). errors.Is matches it with the sentinel of its problem
// code.
type Error struct {
	Method, Path string
	Endpoint     string // the URL of the server (or proxy) that answered
	Problem      wire.Problem
}

func (e *Error) Error() string {
	return fmt.Sprintf("kvstore: %s %s: %s", e.Method, e.Path, e.Problem.Error())
}

// Is reports whether target is the sentinel of e's problem code.
func (e *Error) Is(target error) bool {
	s, ok := target.(*codeError)
	return ok && s.code == e.Problem.Code
}

// codeError is a sentinel: it stands for every Error with its code.
type codeError struct{ code string }

func (s *codeError) Error() string { return "kvstore: " + s.code }

// Sentinels of the problem codes a caller branches on; errors.Is(err,
// ErrNoQuorum) holds for an *Error with wire.CodeNoQuorum.
var (
	ErrNotFound           error = &codeError{wire.CodeNotFound}
	ErrNotMember          error = &codeError{wire.CodeNotMember}
	ErrPreconditionFailed error = &codeError{wire.CodePreconditionFailed}
	ErrNoQuorum           error = &codeError{wire.CodeNoQuorum}
	ErrNotClustered       error = &codeError{wire.CodeNotClustered}
	ErrRecoveryRefused    error = &codeError{wire.CodeRecoveryRefused}
	ErrUnauthorized       error = &codeError{wire.CodeUnauthorized}
	ErrForbidden          error = &codeError{wire.CodeForbidden}
	ErrUnavailable        error = &codeError{wire.CodeUnavailable}
	ErrInvalidArgument    error = &codeError{wire.CodeInvalidArgument}
	ErrInvalidKey         error = &codeError{wire.CodeInvalidKey}
	ErrInvalidTTL         error = &codeError{wire.CodeInvalidTTL}
	ErrKeyTooLarge        error = &codeError{wire.CodeKeyTooLarge}
	ErrValueTooLarge      error = &codeError{wire.CodeValueTooLarge}
	ErrTooManyRequests    error = &codeError{wire.CodeTooManyRequests}
	ErrInsufficientSpace  error = &codeError{wire.CodeInsufficientSpace}
	ErrInternal           error = &codeError{wire.CodeInternal}
	// ErrCompacted: a watch asked to resume from history the server no
	// longer holds. Re-read with List and watch from its revision.
	ErrCompacted error = &codeError{wire.CodeCompacted}
	// ErrOutcomeUnknown: a write may or may not have been applied. It
	// matches the server's outcome_unknown answer, and a write that was
	// sent but got no answer (a dropped connection, a deadline: errors.Is
	// matches the cause too). Read the key, or retry
	// conditionally (IfMatch).
	ErrOutcomeUnknown error = &codeError{wire.CodeOutcomeUnknown}
)

// outcomeError is a write that was sent and got no answer: errors.Is
// matches ErrOutcomeUnknown and the cause (context.DeadlineExceeded, a
// connection reset).
type outcomeError struct {
	method, path, endpoint string
	err                    error
}

func (e *outcomeError) Error() string {
	return fmt.Sprintf("kvstore: %s %s: outcome unknown (sent to %s, no answer): %v", e.method, e.path, e.endpoint, e.err)
}

func (e *outcomeError) Unwrap() []error { return []error{ErrOutcomeUnknown, e.err} }
