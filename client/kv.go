package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"kvstore.dev/kvstore/wire"
)

// WriteOption sets a condition or a property of Put and Delete.
type WriteOption func(*writeOptions)

type writeOptions struct {
	ttl         time.Duration
	ifMatch     uint64
	ifExists    bool
	ifAbsent    bool
	contentType string
}

// TTL makes Put's key expire after d (at most 87600h; the server refuses
// anything else with ErrInvalidTTL). Without it a Put removes a TTL.
func TTL(d time.Duration) WriteOption { return func(o *writeOptions) { o.ttl = d } }

// IfMatch makes the write conditional (compare-and-swap): it is applied
// only if the key's revision is rev, else ErrPreconditionFailed.
func IfMatch(rev uint64) WriteOption { return func(o *writeOptions) { o.ifMatch = rev } }

// IfExists makes the write conditional on the key existing (If-Match: *).
func IfExists() WriteOption { return func(o *writeOptions) { o.ifExists = true } }

// IfAbsent makes Put create only (If-None-Match: *): ErrPreconditionFailed
// when the key exists.
func IfAbsent() WriteOption { return func(o *writeOptions) { o.ifAbsent = true } }

// ContentType sets the media type stored with Put's value (default
// application/octet-stream).
func ContentType(ct string) WriteOption { return func(o *writeOptions) { o.contentType = ct } }

func (o writeOptions) conditions(h http.Header) error {
	n := 0
	if o.ifMatch != 0 {
		h.Set("If-Match", `"`+strconv.FormatUint(o.ifMatch, 10)+`"`)
		n++
	}
	if o.ifExists {
		h.Set("If-Match", "*")
		n++
	}
	if o.ifAbsent {
		h.Set("If-None-Match", "*")
		n++
	}
	if n > 1 {
		return fmt.Errorf("kvstore: IfMatch, IfExists and IfAbsent exclude each other: %w", ErrInvalidArgument)
	}
	return nil
}

// ReadOption sets how Get and List read.
type ReadOption func(*readOptions)

type readOptions struct{ consistency string }

// Consistency sets the read's consistency level (wire.ConsistencyLinearizable,
// the default, wire.ConsistencyLeader or wire.ConsistencyStale).
func Consistency(level string) ReadOption { return func(o *readOptions) { o.consistency = level } }

// PutResult is the answer to Put: the key's new metadata (without the
// value) and whether the key was created.
type PutResult struct {
	wire.KeyMeta
	Created bool
}

func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("kvstore: empty key: %w", ErrInvalidKey)
	}
	return nil
}

// Put writes value under key; the answer comes once the write is durable.
func (c *Client) Put(ctx context.Context, key string, value []byte, opts ...WriteOption) (PutResult, error) {
	var o writeOptions
	for _, f := range opts {
		f(&o)
	}
	if err := checkKey(key); err != nil {
		return PutResult{}, err
	}
	rq := request{method: http.MethodPut, path: wire.KeyPath(key), write: true, header: http.Header{}}
	if err := o.conditions(rq.header); err != nil {
		return PutResult{}, err
	}
	if o.ttl != 0 {
		rq.path += "?ttl=" + url.QueryEscape(o.ttl.String())
	}
	if o.contentType != "" {
		rq.header.Set("Content-Type", o.contentType)
	}
	rq.body = value
	if rq.body == nil {
		rq.body = []byte{}
	}
	resp, err := c.send(ctx, rq)
	if err != nil {
		return PutResult{}, err
	}
	defer resp.Body.Close()
	res := PutResult{Created: resp.StatusCode == http.StatusCreated}
	if err := json.NewDecoder(resp.Body).Decode(&res.KeyMeta); err != nil {
		return res, fmt.Errorf("kvstore: decode PUT %s: %w", rq.path, err)
	}
	return res, nil
}

// Get reads key: its value, content type and metadata. A missing or
// expired key is ErrNotFound.
func (c *Client) Get(ctx context.Context, key string, opts ...ReadOption) (wire.KeyMeta, error) {
	var o readOptions
	for _, f := range opts {
		f(&o)
	}
	if err := checkKey(key); err != nil {
		return wire.KeyMeta{}, err
	}
	rq := request{method: http.MethodGet, path: wire.KeyPath(key)}
	if o.consistency != "" {
		rq.path += "?consistency=" + url.QueryEscape(o.consistency)
	}
	resp, err := c.send(ctx, rq)
	if err != nil {
		return wire.KeyMeta{}, err
	}
	defer resp.Body.Close()
	kv := wire.KeyMeta{Key: key, ContentType: resp.Header.Get("Content-Type")}
	h := resp.Header
	kv.Revision, _ = strconv.ParseUint(strings.Trim(h.Get("ETag"), `"`), 10, 64)
	kv.Version, _ = strconv.ParseUint(h.Get("X-KV-Version"), 10, 64)
	kv.CreateRevision, _ = strconv.ParseUint(h.Get("X-KV-Create-Revision"), 10, 64)
	if v := h.Get("X-KV-Expires-At"); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			kv.ExpiresAt = &t
		}
	}
	if kv.Value, err = io.ReadAll(resp.Body); err != nil {
		return wire.KeyMeta{}, fmt.Errorf("kvstore: GET %s: reading the value: %w", rq.path, err)
	}
	return kv, nil
}

// Delete deletes key and returns the revision of the deletion; a missing
// key is ErrNotFound. IfMatch and IfExists make it conditional.
func (c *Client) Delete(ctx context.Context, key string, opts ...WriteOption) (uint64, error) {
	var o writeOptions
	for _, f := range opts {
		f(&o)
	}
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if o.ttl != 0 || o.ifAbsent || o.contentType != "" {
		return 0, fmt.Errorf("kvstore: Delete takes IfMatch and IfExists only: %w", ErrInvalidArgument)
	}
	rq := request{method: http.MethodDelete, path: wire.KeyPath(key), write: true, header: http.Header{}}
	if err := o.conditions(rq.header); err != nil {
		return 0, err
	}
	resp, err := c.send(ctx, rq)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	rev, _ := strconv.ParseUint(resp.Header.Get("X-KV-Revision"), 10, 64)
	return rev, nil
}

// DeletePrefix deletes every key under prefix, which must not be empty,
// in one transaction.
func (c *Client) DeletePrefix(ctx context.Context, prefix string) (wire.DeletePrefixResponse, error) {
	var out wire.DeletePrefixResponse
	if prefix == "" {
		return out, fmt.Errorf("kvstore: DeletePrefix needs a non-empty prefix: %w", ErrInvalidArgument)
	}
	err := c.do(ctx, http.MethodDelete, wire.PathKV+"?prefix="+url.QueryEscape(prefix), nil, &out)
	return out, err
}

// ListOptions select the keys of List, ListPages and ListPage.
type ListOptions struct {
	Prefix      string // keys starting with it; "" for all the token may read
	After       string // start after this key (a page's Next)
	PageSize    int    // keys per page; 0 is the server's default (100), at most 1000
	KeysOnly    bool   // leave out values and content types
	Consistency string // as Consistency; "" is linearizable
}

func (o ListOptions) path() string {
	q := url.Values{}
	if o.Prefix != "" {
		q.Set("prefix", o.Prefix)
	}
	if o.After != "" {
		q.Set("after", o.After)
	}
	if o.PageSize > 0 {
		q.Set("limit", strconv.Itoa(o.PageSize))
	}
	if o.KeysOnly {
		q.Set("keys_only", "true")
	}
	if o.Consistency != "" {
		q.Set("consistency", o.Consistency)
	}
	if len(q) == 0 {
		return wire.PathKV
	}
	return wire.PathKV + "?" + q.Encode()
}

// ListPage reads one page of keys; its Next, as opts.After, reads the
// following one ("" on the last page).
func (c *Client) ListPage(ctx context.Context, opts ListOptions) (wire.ListResponse, error) {
	var page wire.ListResponse
	err := c.do(ctx, http.MethodGet, opts.path(), nil, &page)
	return page, err
}

// ListPages iterates over the pages of keys under opts.Prefix, each read
// when the loop asks for it; an error is the last pair.
func (c *Client) ListPages(ctx context.Context, opts ListOptions) iter.Seq2[wire.ListResponse, error] {
	return func(yield func(wire.ListResponse, error) bool) {
		for {
			page, err := c.ListPage(ctx, opts)
			if err != nil {
				yield(page, err)
				return
			}
			if !yield(page, nil) || page.Next == "" {
				return
			}
			opts.After = page.Next
		}
	}
}

// List iterates over the keys under opts.Prefix in key order, a page at a
// time (every key exactly once); an error is the last pair.
func (c *Client) List(ctx context.Context, opts ListOptions) iter.Seq2[wire.KeyMeta, error] {
	return func(yield func(wire.KeyMeta, error) bool) {
		for page, err := range c.ListPages(ctx, opts) {
			if err != nil {
				yield(wire.KeyMeta{}, err)
				return
			}
			for _, kv := range page.Items {
				if !yield(kv, nil) {
					return
				}
			}
		}
	}
}
