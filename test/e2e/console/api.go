package console

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// apiClient makes the flow's own calls to the API, to check what the
// console did and to change keys behind its back.
type apiClient struct {
	base  string
	token string
	hc    *http.Client
}

// keyURL percent-encodes each segment of key, as the console does.
func (a *apiClient) keyURL(key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return a.base + "/api/v1/kv/" + strings.Join(segs, "/")
}

func (a *apiClient) do(ctx context.Context, method, u string, body io.Reader, header http.Header) (*http.Response, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, nil, fmt.Errorf("building %s %s: %w", method, u, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	res, err := a.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the body: %w", method, u, err)
	}
	return res, b, nil
}

// get reads key; a missing key is status 404 and no error.
func (a *apiClient) get(ctx context.Context, key string) (int, string, http.Header, error) {
	res, body, err := a.do(ctx, http.MethodGet, a.keyURL(key), nil, nil)
	if err != nil {
		return 0, "", nil, err
	}
	return res.StatusCode, string(body), res.Header, nil
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
	h := http.Header{"Content-Type": {contentType}}
	res, body, err := a.do(ctx, http.MethodPut, a.keyURL(key), strings.NewReader(value), h)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusCreated {
		return fmt.Errorf("PUT %s: %s %s", key, res.Status, body)
	}
	return nil
}

// deletePrefix removes every key under prefix.
func (a *apiClient) deletePrefix(ctx context.Context, prefix string) error {
	u := a.base + "/api/v1/kv?" + url.Values{"prefix": {prefix}}.Encode()
	res, body, err := a.do(ctx, http.MethodDelete, u, nil, nil)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("DELETE ?prefix=%s: %s %s", prefix, res.Status, body)
	}
	return nil
}

// keyCount is the number of keys GET /api/v1/status reports; ok is false
// when the token is not an admin's, which is not told the count.
func (a *apiClient) keyCount(ctx context.Context) (n int64, ok bool, err error) {
	res, body, err := a.do(ctx, http.MethodGet, a.base+"/api/v1/status", nil, nil)
	if err != nil {
		return 0, false, err
	}
	if res.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET /api/v1/status: %s %s", res.Status, body)
	}
	var st struct {
		Keys *int64 `json:"keys"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, false, fmt.Errorf("GET /api/v1/status: %w", err)
	}
	if st.Keys == nil {
		return 0, false, nil
	}
	return *st.Keys, true, nil
}
