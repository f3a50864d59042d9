package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"kvstore.dev/kvstore/test/harness"
	"kvstore.dev/kvstore/wire"
)

// apiClient makes the flow's own calls to the API, to check what the
// console did and to change keys behind its back.
type apiClient struct{ c *harness.Client }

func newAPIClient(base, token string, hc *http.Client) *apiClient {
	return &apiClient{&harness.Client{URL: base, Token: token, HC: hc, Timeout: stepTimeout}}
}

// do sends one request; an error means no answer, or a body cut short.
func (a *apiClient) do(ctx context.Context, method, path string, body []byte, header ...string) (harness.Reply, error) {
	r := a.c.DoContext(ctx, method, path, body, header...)
	if r.Err != nil {
		return r, fmt.Errorf("%s %s: %w", method, path, r.Err)
	}
	return r, nil
}

// get reads key (each segment percent-encoded, as the console does); a
// missing key is status 404 and no error.
func (a *apiClient) get(ctx context.Context, key string) (int, string, http.Header, error) {
	r, err := a.do(ctx, http.MethodGet, wire.KeyPath(key), nil)
	if err != nil {
		return 0, "", nil, err
	}
	return r.Status, string(r.Body), r.Header, nil
}

// wantValue checks that key holds value.
func (a *apiClient) wantValue(ctx context.Context, key, value string) (http.Header, error) {
	status, got, h, err := a.get(ctx, key)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK || got != value {
		return nil, fmt.Errorf("GET %s: got %d %q, want 200 %q", key, status, got, value)
	}
	return h, nil
}

// wantMissing checks that key does not exist.
func (a *apiClient) wantMissing(ctx context.Context, key string) error {
	status, body, _, err := a.get(ctx, key)
	if err != nil {
		return err
	}
	if status != http.StatusNotFound {
		return fmt.Errorf("GET %s: got %d %q, want 404", key, status, body)
	}
	return nil
}

// put writes a text value and fails unless the API answers 200 or 201.
func (a *apiClient) put(ctx context.Context, key, value string) error {
	return a.putTyped(ctx, key, value, "text/plain; charset=utf-8")
}

// putTyped writes value (any bytes) with a content type.
func (a *apiClient) putTyped(ctx context.Context, key, value, contentType string) error {
	r, err := a.do(ctx, http.MethodPut, wire.KeyPath(key), []byte(value), "Content-Type", contentType)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK && r.Status != http.StatusCreated {
		return fmt.Errorf("PUT %s: %d %s", key, r.Status, r.Body)
	}
	return nil
}

// deletePrefix removes every key under prefix.
func (a *apiClient) deletePrefix(ctx context.Context, prefix string) error {
	r, err := a.do(ctx, http.MethodDelete, wire.PathKV+"?"+url.Values{"prefix": {prefix}}.Encode(), nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return fmt.Errorf("DELETE ?prefix=%s: %d %s", prefix, r.Status, r.Body)
	}
	return nil
}

// keyCount is the number of keys GET /api/v1/status reports; ok is false
// when the token is not an admin's, which is not told the count.
func (a *apiClient) keyCount(ctx context.Context) (n int64, ok bool, err error) {
	r, err := a.do(ctx, http.MethodGet, wire.PathStatus, nil)
	if err != nil {
		return 0, false, err
	}
	if r.Status != http.StatusOK {
		return 0, false, fmt.Errorf("GET %s: %d %s", wire.PathStatus, r.Status, r.Body)
	}
	var st struct {
		Keys *int64 `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &st); err != nil {
		return 0, false, fmt.Errorf("GET %s: %w", wire.PathStatus, err)
	}
	if st.Keys == nil {
		return 0, false, nil
	}
	return *st.Keys, true, nil
}
