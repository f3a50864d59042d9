package server

import (
	"net/http"
	"time"
)

// HTTP/2 limits of the API listener (docs/api.md, "HTTP/2"). They bound
// what one connection may hold; http.max_connections still bounds the
// connections, and watch.max_watches the watch streams over all of them.
const (
	// h2MaxConcurrentStreams is how many requests one HTTP/2 connection may
	// have open at once; a client past it waits for a stream to end (or
	// opens another connection, within http.max_connections).
	h2MaxConcurrentStreams = 250
	// h2MaxReadFrameSize is the largest frame the server reads (1 MiB).
	h2MaxReadFrameSize = 1 << 20
	// h2MaxReceiveBufferPerConnection and h2MaxReceiveBufferPerStream are
	// the flow-control windows of request bodies (1 MiB per connection,
	// 1 MiB per stream: one largest value in flight at full speed).
	h2MaxReceiveBufferPerConnection = 1 << 20
	h2MaxReceiveBufferPerStream     = 1 << 20
	// h2HeaderTableSize bounds the HPACK tables both ways (4 KiB, the
	// protocol's default).
	h2HeaderTableSize = 4 << 10
	// h2SendPingTimeout: a connection silent this long is pinged, and
	// closed when the ping is not answered within h2PingTimeout.
	h2SendPingTimeout = 30 * time.Second
	h2PingTimeout     = 15 * time.Second
	// h2WriteByteTimeout closes a connection whose peer accepts no byte
	// for this long while the server has data to send.
	h2WriteByteTimeout = 30 * time.Second
)

// apiProtocols is what the API listener speaks: HTTP/1.1, and HTTP/2 —
// over TLS by ALPN ("h2") when api.tls is on, and on plain HTTP by prior
// knowledge (h2c: a client that starts with the HTTP/2 preface).
func apiProtocols() *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	p.SetHTTP2(true)
	p.SetUnencryptedHTTP2(true)
	return p
}

// apiHTTP2 is the API listener's HTTP/2 configuration. The request header
// limit is http.max_header_bytes, as for HTTP/1.1.
func apiHTTP2() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams:          h2MaxConcurrentStreams,
		MaxReadFrameSize:              h2MaxReadFrameSize,
		MaxReceiveBufferPerConnection: h2MaxReceiveBufferPerConnection,
		MaxReceiveBufferPerStream:     h2MaxReceiveBufferPerStream,
		MaxDecoderHeaderTableSize:     h2HeaderTableSize,
		MaxEncoderHeaderTableSize:     h2HeaderTableSize,
		SendPingTimeout:               h2SendPingTimeout,
		PingTimeout:                   h2PingTimeout,
		WriteByteTimeout:              h2WriteByteTimeout,
	}
}
