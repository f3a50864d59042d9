package client

import "net/http"

// WithResponseHook calls f with every response the Client receives, so
// that tests see the protocol a request went over.
func WithResponseHook(f func(*http.Response)) Option {
	return func(c *Client) { c.onResponse = f }
}
