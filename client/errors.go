package client

import (
	"fmt"

	"kvstore.dev/kvstore/wire"
)

// Error is a non-2xx answer: the request and the problem body the server
// answered with (wire.ReadProblem's, so a proxy's page gives one too).
// errors.Is matches it with the sentinel of its problem code.
type Error struct {
	Method, Path string
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
	ErrOutcomeUnknown     error = &codeError{wire.CodeOutcomeUnknown}
	ErrUnauthorized       error = &codeError{wire.CodeUnauthorized}
	ErrForbidden          error = &codeError{wire.CodeForbidden}
	ErrUnavailable        error = &codeError{wire.CodeUnavailable}
	ErrInvalidArgument    error = &codeError{wire.CodeInvalidArgument}
)
