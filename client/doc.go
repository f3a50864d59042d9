// Package client is kvstore's Go client for the HTTP API whose contract is
// package wire (docs/api.md describes it for people).
//
// A Client holds one or more endpoints (the nodes of a hand-run cluster,
// or one Service or load balancer URL) and a bearer token:
//
//	c := client.New("http://127.0.0.1:8080,http://127.0.0.1:8081", client.WithToken(token))
//	res, err := c.Put(ctx, "greetings/en", []byte("hello"), client.TTL(time.Hour))
//	kv, err := c.Get(ctx, "greetings/en")
//	for kv, err := range c.List(ctx, client.ListOptions{Prefix: "greetings/"}) { ... }
//	for ev, err := range c.Watch(ctx, client.WatchOptions{Prefix: "greetings/"}) { ... }
//
// # Errors
//
// A non-2xx answer is an *Error carrying the server's wire.Problem; branch
// on it with errors.Is and the Err sentinels, which match by problem code
// (errors.Is(err, client.ErrNotFound)). ErrOutcomeUnknown marks a write
// that may have been applied: the server answered outcome_unknown, or the
// request was sent and no answer came (a dropped connection, a deadline).
// Every other error of a write means it was not applied.
//
// # Retries and failover
//
// Only what is safe is retried, within Retry's bounds (attempts and total
// time) and the call's context: a request that was never sent (connection
// refused, a failed dial), an answer of no_quorum or too_many_requests
// (the server refused before doing anything), and for reads (GET) also
// unavailable and transport errors (but not a server certificate that does
// not verify). Each retry goes to the next endpoint,
// and the endpoint that answered last is tried first by the next call.
//
// # Protocols
//
// By default the client speaks HTTP/2: over TLS (https://) negotiated by
// ALPN, falling back to HTTP/1.1 when the server does not offer h2, and to
// a plain http:// endpoint by prior knowledge (h2c), which kvstore's API
// listener accepts. Requests to one endpoint share one connection (the
// transport opens another past the server's concurrent-stream limit).
// WithHTTP1 makes it speak HTTP/1.1 only (an HTTP/1.1-only proxy in front
// of a plain endpoint needs it).
//
// A Client is safe for concurrent use; its settings are fixed by New.
package client
