package console

// The steps that work on keys: create, open, edit, conflict, delete,
// errors and paging.

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

func (r *runner) create() error {
	key := r.key("hello")
	err := r.do(
		click("#new-key"),
		visible("#editor-panel"),
		textIs("#editor-key", r.prefix),
		setValue("#editor-key", key),
		setValue("#editor-value", "hi there"),
		setValue("#editor-ttl", "1h"),
		click("#editor-save"),
		visible("#detail-panel"),
		textIs("#detail-key", key),
		textIs("#detail-value", "hi there"),
		textHas("#detail-expires", "in "),
		textIs("#detail-version", "1"),
		visible(row(key)),
		visible(event("put", key)),
	)
	if err != nil {
		return err
	}
	h, err := r.api.wantValue(r.ctx, key, "hi there")
	if err != nil {
		return err
	}
	exp, err := time.Parse(time.RFC3339Nano, h.Get("X-KV-Expires-At"))
	if err != nil {
		return fmt.Errorf("the key has no valid expiry (X-KV-Expires-At %q): %w", h.Get("X-KV-Expires-At"), err)
	}
	if left := time.Until(exp); left < 55*time.Minute || left > time.Hour+time.Minute {
		return fmt.Errorf("the key expires in %v, want about 1h", left)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return fmt.Errorf("the key's content type is %q, want text/plain", ct)
	}
	return nil
}

func (r *runner) openFromList() error {
	key := r.key("hello")
	return r.do(
		click("#detail-close"),
		notVisible("#detail-panel"),
		click(row(key)+" button"),
		visible("#detail-panel"),
		textIs("#detail-key", key),
		textIs("#detail-value", "hi there"),
		textIs("#detail-format", "UTF-8 text"),
		visible(row(key)+".selected"),
	)
}

func (r *runner) edit() error {
	key := r.key("hello")
	err := r.do(
		click("#detail-edit"),
		visible("#editor-panel"),
		textIs("#editor-key", key),
		textIs("#editor-value", "hi there"),
	)
	if err != nil {
		return err
	}
	// The form keeps the remaining lifetime, such as "59m58s".
	ttl, err := evaluate[string](r, `document.getElementById("editor-ttl").value`)
	if err != nil {
		return err
	}
	if d, err := time.ParseDuration(ttl); err != nil || d < 55*time.Minute || d > time.Hour {
		return fmt.Errorf("the editor's TTL is %q, want the remaining lifetime, about 1h", ttl)
	}
	err = r.do(
		setValue("#editor-value", "hello again"),
		click("#editor-save"),
		visible("#detail-panel"),
		textIs("#detail-value", "hello again"),
		textIs("#detail-version", "2"),
	)
	if err != nil {
		return err
	}
	h, err := r.api.wantValue(r.ctx, key, "hello again")
	if err != nil {
		return err
	}
	if h.Get("X-KV-Expires-At") == "" {
		return errors.New("the edit removed the key's TTL; the editor must keep it")
	}
	return nil
}

func (r *runner) binary() error {
	blob, hello := r.key("blob"), r.key("hello")
	if err := r.api.putTyped(r.ctx, blob, "\x00\x01\x02\xffkv", "application/octet-stream"); err != nil {
		return err
	}
	return r.do(
		click(row(blob)+" button"),
		textIs("#detail-key", blob),
		textIs("#detail-format", "binary · hex"),
		textHas("#detail-value", "00000000  00 01 02 ff 6b 76"),
		textHas("#detail-value", "|....kv|"),
		textIs("#detail-content-type", "application/octet-stream"),
		notVisible("#detail-toggle"), // no text view of binary
		click(row(hello)+" button"),
		textIs("#detail-key", hello),
		textIs("#detail-value", "changed elsewhere"),
	)
}

func (r *runner) conflict() error {
	key := r.key("hello")
	if err := r.do(click("#detail-edit"), visible("#editor-panel"), textIs("#editor-value", "changed elsewhere")); err != nil {
		return err
	}
	if err := r.api.put(r.ctx, key, "conflicting write"); err != nil {
		return err
	}
	err := r.do(
		visible("#editor-changed"), // the watch warns while the form is open
		setValue("#editor-value", "my stale edit"),
		click("#editor-save"),
		visible("#error-area"),
		textHas("#error-code", "412"),
		textIs("#error-title", "Precondition failed"),
		textHas("#error-hint", "changed by someone else"),
	)
	if err != nil {
		return err
	}
	if _, err := r.api.wantValue(r.ctx, key, "conflicting write"); err != nil {
		return fmt.Errorf("the refused edit changed the key: %w", err)
	}
	return r.do(
		click("#error-dismiss"),
		notVisible("#error-area"),
		click("#editor-cancel"),
		visible("#detail-panel"),
		textIs("#detail-value", "conflicting write"),
	)
}

func (r *runner) remove() error {
	key := r.key("hello")
	if err := r.do(click("#detail-delete")); err != nil {
		return err
	}
	msg, err := r.expectDialog()
	if err != nil {
		return err
	}
	if !strings.Contains(msg, key) {
		return fmt.Errorf("the confirmation dialog says %q; it should name the key %s", msg, key)
	}
	if err := r.do(notVisible("#detail-panel"), gone(row(key)), visible(event("delete", key))); err != nil {
		return err
	}
	return r.api.wantMissing(r.ctx, key)
}

func (r *runner) invalidTTL() error {
	key := r.key("bad-ttl")
	err := r.do(
		click("#new-key"),
		visible("#editor-panel"),
		setValue("#editor-key", key),
		setValue("#editor-value", "x"),
		setValue("#editor-ttl", "soon"),
		click("#editor-save"),
		visible("#error-area"),
		textIs("#error-title", "Invalid TTL"),
		textHas("#error-code", "invalid_ttl"),
		textHas("#error-detail", `ttl "soon" is not a duration`),
	)
	if err != nil {
		return err
	}
	if err := r.screenshot("error"); err != nil {
		return err
	}
	return r.api.wantMissing(r.ctx, key)
}

func (r *runner) invalidKey() error {
	err := r.do(
		click("#error-dismiss"),
		notVisible("#error-area"),
		setValue("#editor-key", r.prefix+"../escape"),
		click("#editor-save"),
		visible("#error-area"),
		textIs("#error-title", "Invalid key"),
		textHas("#error-detail", `".." path segment`),
		click("#editor-cancel"),
		notVisible("#editor-panel"),
	)
	if err != nil {
		return err
	}
	// A browser resolves ".." before sending, so the write would have
	// landed on the cleaned path.
	return r.api.wantMissing(r.ctx, path.Join(r.prefix, "..", "escape"))
}

// pages lists a dozen keys ten at a time, forward and back.
func (r *runner) pages() error {
	dir := r.key("page/")
	for i := range 12 {
		if err := r.api.put(r.ctx, fmt.Sprintf("%sk%02d", dir, i), strconv.Itoa(i)); err != nil {
			return err
		}
	}
	return r.do(
		setValue("#prefix-input", dir),
		setValue("#page-size", "10"),
		click("#browse-submit"),
		visible(byTestID("watch-status")+`[data-state="live"]`),
		rowCount(10),
		visible(row(dir+"k00")),
		textHas("#page-info", "Page 1"),
		click("#page-next"),
		rowCount(2),
		visible(row(dir+"k11")),
		textHas("#page-info", "Page 2"),
		chromedp.WaitEnabled(chromedp.CSS("#page-prev")),
		click("#page-prev"),
		rowCount(10),
		visible(row(dir+"k00")),
		textHas("#page-info", "Page 1"),
	)
}
