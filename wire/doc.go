// Package wire is kvstore's HTTP/JSON contract: the paths of the client API
// (/api/v1) and of the peer API (/peer/v1), the request and response bodies,
// the problem body every error is answered with, and its stable codes.
//
// The server, the operator, the tests, the benchmarks and the Go client all
// import it, so a field or a code is declared once. The package has no
// dependencies beyond the standard library and no behaviour beyond
// (de)coding: which error maps to which code is internal/errcode's table,
// which takes its codes from here. docs/api.md describes the same contract
// for people.
package wire
