// Helpers for the black-box tests of the kvstore binary: what a PUT must
// answer and what a 404 must look like. The servers run as child processes
// of test/harness; the tests that use these helpers live in crash_test.go.
package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

func TestMain(m *testing.M) { harness.Main(m) }

// putResult is what a PUT answered. An error from put instead means the
// outcome of the write is unknown.
type putResult struct {
	status    int
	etag      string
	meta      wire.KeyMeta
	body      []byte
	decodeErr error // set if a 200/201 body did not decode as wire.KeyMeta
}

// put writes value under key. A non-nil error means the request failed
// before a status line arrived, so the write may or may not have happened.
func put(c *harness.Client, key string, value []byte) (putResult, error) {
	r := c.Put(key, value, "Content-Type", "application/octet-stream")
	if r.Status == 0 {
		return putResult{}, r.Err
	}
	res := putResult{status: r.Status, etag: r.Header.Get("ETag"), body: r.Body}
	if r.Err != nil {
		// The status line arrived, so the server answered; only the body is lost.
		res.decodeErr = r.Err
		return res, nil
	}
	if res.status == http.StatusOK || res.status == http.StatusCreated {
		if err := json.Unmarshal(res.body, &res.meta); err != nil {
			res.decodeErr = fmt.Errorf("decoding %q: %w", res.body, err)
		}
	}
	return res, nil
}

// checkPutContract returns how an acknowledged PUT of key broke the API
// contract, if it did. existed says whether the key held a value before the
// write; prevRev is the last revision acknowledged for the key (0 if none).
func checkPutContract(key string, existed bool, prevRev int64, res putResult) []string {
	var problems []string
	wantStatus := http.StatusCreated
	if existed {
		wantStatus = http.StatusOK
	}
	if res.status != wantStatus {
		problems = append(problems, fmt.Sprintf("PUT %s (key existed: %t): status %d, want %d", key, existed, res.status, wantStatus))
	}
	if res.decodeErr != nil {
		return append(problems, fmt.Sprintf("PUT %s: body: %v", key, res.decodeErr))
	}
	if res.meta.Key != key {
		problems = append(problems, fmt.Sprintf("PUT %s: body key %q, want %q", key, res.meta.Key, key))
	}
	rev := int64(res.meta.Revision)
	if want := strconv.Quote(strconv.FormatInt(rev, 10)); res.etag != want {
		problems = append(problems, fmt.Sprintf("PUT %s: ETag %s, want %s (the revision in the body)", key, res.etag, want))
	}
	if rev <= prevRev {
		problems = append(problems, fmt.Sprintf("PUT %s: revision %d, want more than %d (the previous acknowledged revision of the key)", key, rev, prevRev))
	}
	return problems
}

// checkNotFound returns how a 404 answer broke the API contract, if it did.
func checkNotFound(key string, res harness.Reply) []string {
	var problems []string
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, wire.ContentTypeProblem) {
		problems = append(problems, fmt.Sprintf("GET %s: 404 with Content-Type %q, want %s", key, ct, wire.ContentTypeProblem))
	}
	var body wire.Problem
	if err := json.Unmarshal(res.Body, &body); err != nil || body.Code != wire.CodeNotFound {
		problems = append(problems, fmt.Sprintf("GET %s: 404 body %q, want a problem with code %q", key, res.Body, wire.CodeNotFound))
	}
	return problems
}
