package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"kvstore.dev/kvstore/internal/store"
)

// TestProblemTable checks the one place errors become statuses, wrapped as
// the layers below wrap them.
func TestProblemTable(t *testing.T) {
	tests := map[string]struct {
		err      error
		status   int
		code     string
		internal bool
	}{
		"not found":       {fmt.Errorf("get: %w", store.ErrNotFound), 404, "not_found", false},
		"cas":             {fmt.Errorf("%w: key \"a\"", store.ErrPreconditionFailed), 412, "precondition_failed", false},
		"disk full":       {fmt.Errorf("wal append: %w", fmt.Errorf("%w: write: no space", store.ErrNoSpace)), 507, "insufficient_storage", false},
		"closed":          {store.ErrClosed, 503, "unavailable", false},
		"no quorum":       {fmt.Errorf("propose: %w", store.ErrNoQuorum), 503, "no_quorum", false},
		"outcome unknown": {fmt.Errorf("propose: %w", store.ErrOutcomeUnknown), 504, "outcome_unknown", false},
		"compacted":       {store.ErrCompacted, 410, "compacted", false},
		"cancelled":       {context.Canceled, 503, "unavailable", false},
		"ttl":             {errWith(errInvalidTTL, "bad"), 400, "invalid_ttl", false},
		"key too large":   {store.ErrKeyTooLarge, 414, "key_too_large", false},
		"value too large": {store.ErrValueTooLarge, 413, "value_too_large", false},
		"unknown":         {errors.New("bbolt: page 7 already freed"), 500, "internal", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, internal := problemFor(tc.err)
			if p.Status != tc.status || p.Code != tc.code || internal != tc.internal {
				t.Errorf("problemFor(%v) = %d %s internal=%v; want %d %s %v", tc.err, p.Status, p.Code, internal, tc.status, tc.code, tc.internal)
			}
			if tc.internal && strings.Contains(p.Detail, "bbolt") {
				t.Errorf("internal detail leaked to the client: %q", p.Detail)
			}
			if http.StatusText(p.Status) == "" {
				t.Errorf("status %d has no text", p.Status)
			}
		})
	}
}
