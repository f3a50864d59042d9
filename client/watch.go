package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"kvstore.dev/kvstore/wire"
)

// maxEventBytes bounds one Server-Sent Event line (a 1 MiB value is about
// 1.4 MB of base64; the server's value limit is configurable).
const maxEventBytes = 64 << 20

// WatchOptions select the changes of Watch.
type WatchOptions struct {
	Prefix string // changes of keys starting with it
	// Since delivers the changes after this revision that the server still
	// holds, then live ones; older history is ErrCompacted. 0 means the
	// changes after the server's current revision (read when Watch starts).
	Since uint64
	// IdleTimeout drops a stream that sends nothing for this long (no
	// event, no heartbeat) and resumes it: a connection that died without
	// a word (a host gone, a NAT entry expired) is noticed. The server sends
	// a heartbeat every watch.heartbeat (15s by default); the default,
	// DefaultWatchIdleTimeout, allows three to go missing. Negative
	// disables it.
	IdleTimeout time.Duration
}

// DefaultWatchIdleTimeout is WatchOptions.IdleTimeout's default.
const DefaultWatchIdleTimeout = time.Minute

// Watch iterates over the changes under opts.Prefix in revision order.
// A dropped stream (a restarted server, a proxy's timeout, a failed
// endpoint) is resumed after the last revision delivered, with
// Last-Event-ID, on the next endpoint, so no change is missed or repeated.
// The iteration ends with an error as the last pair: ctx's error once ctx
// ends, ErrCompacted when the server no longer holds the history to
// resume from, or the error of a reconnection that failed within the
// Client's Retry bounds. Stop early with break.
func (c *Client) Watch(ctx context.Context, opts WatchOptions) iter.Seq2[wire.WatchEvent, error] {
	return func(yield func(wire.WatchEvent, error) bool) {
		since := opts.Since
		if since == 0 {
			st, err := c.Status(ctx)
			if err != nil {
				yield(wire.WatchEvent{}, err)
				return
			}
			since = st.Revision
		}
		idle := opts.IdleTimeout
		if idle == 0 {
			idle = DefaultWatchIdleTimeout
		}
		drops := 0 // streams dropped in a row without delivering anything
		for {
			rq := request{method: http.MethodGet, path: wire.PathWatch, header: http.Header{}}
			if opts.Prefix != "" {
				rq.path += "?prefix=" + url.QueryEscape(opts.Prefix)
			}
			rq.header.Set("Accept", "text/event-stream")
			rq.header.Set("Last-Event-ID", strconv.FormatUint(since, 10))
			resp, err := c.send(ctx, rq)
			if err != nil {
				if ctx.Err() != nil {
					err = ctx.Err()
				}
				yield(wire.WatchEvent{}, err)
				return
			}
			progressed, stop, err := c.readStream(resp.Body, idle, &since, yield)
			resp.Body.Close()
			switch {
			case stop:
				return
			case ctx.Err() != nil:
				yield(wire.WatchEvent{}, ctx.Err())
				return
			case progressed:
				drops = 0
			default:
				drops++
			}
			if drops >= c.retry.MaxAttempts {
				yield(wire.WatchEvent{}, fmt.Errorf("kvstore: watch %q: the stream dropped %d times in a row: %w", opts.Prefix, drops, err))
				return
			}
			if drops > 0 && !sleep(ctx, c.retry.backoff(drops)) {
				yield(wire.WatchEvent{}, ctx.Err())
				return
			}
		}
	}
}

// readStream yields the events of one stream until it ends. It advances
// *since past each event delivered, and reports whether the stream
// delivered anything past its opening (an event or a heartbeat), whether
// the consumer stopped (or got an error yielded), and why the stream ended.
func (c *Client) readStream(body io.ReadCloser, idle time.Duration, since *uint64, yield func(wire.WatchEvent, error) bool) (progressed, stop bool, err error) {
	r := &sseReader{r: bufio.NewReaderSize(body, 32<<10)}
	if idle > 0 { // closing the body ends the read that waits
		watchdog := time.AfterFunc(idle, func() { body.Close() })
		defer watchdog.Stop()
		r.onLine = func() { watchdog.Reset(idle) }
		r.pause = func() { watchdog.Stop() }
	}
	opened := false
	for {
		ev, err := r.next()
		if err != nil {
			return progressed, false, err
		}
		if ev.comment {
			if opened { // the first comment names the prefix; later ones are heartbeats
				progressed = true
			}
			opened = true
			continue
		}
		var we wire.WatchEvent
		if err := json.Unmarshal(ev.data, &we); err != nil {
			yield(wire.WatchEvent{}, fmt.Errorf("kvstore: watch: decoding event %s: %w", ev.id, err))
			return progressed, true, err
		}
		if we.Revision <= *since { // already delivered (not sent by kvstore; a proxy's replay)
			continue
		}
		*since, progressed = we.Revision, true
		if r.pause != nil {
			r.pause() // a slow consumer is not a silent server
		}
		if !yield(we, nil) {
			return progressed, true, nil
		}
		if r.onLine != nil {
			r.onLine() // the wait for the next line starts now
		}
	}
}

// sseEvent is one Server-Sent Event, or a comment line.
type sseEvent struct {
	id      string
	data    []byte
	comment bool
}

// sseReader reads the text/event-stream format (the fields kvstore sends:
// id, data, retry, comments).
type sseReader struct {
	r      *bufio.Reader
	onLine func() // called after each line read, when set
	pause  func() // called before an event is handed over, when set
}

var errEventTooLarge = errors.New("kvstore: watch: an event exceeds 64 MiB")

func (s *sseReader) line() ([]byte, error) {
	var line []byte
	for {
		part, err := s.r.ReadSlice('\n')
		line = append(line, part...)
		if len(line) > maxEventBytes {
			return nil, errEventTooLarge
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return nil, err // io.EOF included: a partial line is not an event
		}
		if s.onLine != nil {
			s.onLine()
		}
		return bytes.TrimRight(line, "\r\n"), nil
	}
}

func (s *sseReader) next() (sseEvent, error) {
	var ev sseEvent
	var data [][]byte
	for {
		line, err := s.line()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if data != nil {
				ev.data = bytes.Join(data, []byte("\n"))
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			if data == nil {
				return sseEvent{comment: true}, nil
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			ev.id = string(value)
		case "data":
			data = append(data, append([]byte(nil), value...))
		}
	}
}
