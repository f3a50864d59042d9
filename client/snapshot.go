package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"kvstore.dev/kvstore/wire"
)

// Snapshot is GET /api/v1/snapshot (an admin token): a consistent copy of
// the server's database file, streamed. The caller reads it to the end
// and closes it; the server holds a read transaction until then, and
// closes a stream that reads slower than its snapshot limits. Restore it
// with `kvstore restore --from FILE`.
func (c *Client) Snapshot(ctx context.Context) (io.ReadCloser, error) {
	resp, err := c.send(ctx, request{method: http.MethodGet, path: wire.PathSnapshot})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// SnapshotTo writes a snapshot to w and returns its size. A stream cut
// short is an error (the server answers with the whole file or a
// truncated body).
func (c *Client) SnapshotTo(ctx context.Context, w io.Writer) (int64, error) {
	body, err := c.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	defer body.Close()
	n, err := io.Copy(w, body)
	if err != nil {
		return n, fmt.Errorf("kvstore: snapshot after %d bytes: %w", n, err)
	}
	return n, nil
}
