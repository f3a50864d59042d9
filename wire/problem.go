package wire

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ContentTypeProblem is the media type of every error body (RFC 9457).
const ContentTypeProblem = "application/problem+json"

// Problem is an RFC 9457 problem details body with kvstore's stable Code.
type Problem struct {
	Type      string `json:"type,omitempty"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
}

// Error makes a decoded Problem usable as an error: "code: detail".
func (p *Problem) Error() string {
	if p.Detail == "" {
		return fmt.Sprintf("%s (HTTP %d)", p.Code, p.Status)
	}
	return fmt.Sprintf("%s: %s", p.Code, p.Detail)
}

// The stable problem codes. A client branches on these, never on a status
// or a title.
const (
	CodeNotFound           = "not_found"
	CodeNotMember          = "not_member"
	CodePreconditionFailed = "precondition_failed"
	CodeInvalidKey         = "invalid_key"
	CodeKeyTooLarge        = "key_too_large"
	CodeValueTooLarge      = "value_too_large"
	CodeCompacted          = "compacted"
	CodeInsufficientSpace  = "insufficient_storage"
	CodeUnavailable        = "unavailable"
	CodeNoQuorum           = "no_quorum"
	CodeNotClustered       = "not_clustered"
	// CodeRecoveryRefused: POST /api/v1/cluster/recover on a server that
	// must not be recovered (it sees a leader, it is alone already, the
	// request names another server or was carried out already).
	CodeRecoveryRefused  = "recovery_refused"
	CodeOutcomeUnknown   = "outcome_unknown"
	CodeInvalidArgument  = "invalid_argument"
	CodeInvalidTTL       = "invalid_ttl"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeTooManyRequests  = "too_many_requests"
	CodeInternal         = "internal"
	// CodeNotLeader is the peer API's answer from a node that lost
	// leadership; the caller finds the new leader and tries again. It never
	// reaches a client.
	CodeNotLeader = "not_leader"
)

// maxProblemBytes bounds how much of an error body ReadProblem reads.
const maxProblemBytes = 64 << 10

// ReadProblem reads an error response's body as a Problem. A body that is
// not a problem (a proxy's HTML page, a truncated stream) still gives one:
// Status from the response; Code CodeUnavailable for 502, 503 and 504 (a
// proxy in front found no server: as retryable as the server's own
// unavailable), CodeInternal for other 5xx and "" otherwise; and the body's
// first line as Detail.
func ReadProblem(resp *http.Response) *Problem {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemBytes))
	p := &Problem{}
	if err := json.Unmarshal(data, p); err != nil || p.Code == "" {
		p = &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode)}
		line, _, _ := strings.Cut(strings.TrimSpace(string(data)), "\n")
		if len(line) > 200 {
			line = line[:200]
		}
		p.Detail = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, line)
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			p.Code = CodeUnavailable // a proxy in front found no server
		default:
			if resp.StatusCode >= 500 {
				p.Code = CodeInternal
			}
		}
	}
	if p.Status == 0 {
		p.Status = resp.StatusCode
	}
	return p
}
