package console

// The steps about the watch stream: live changes, resumption after a
// disconnect, and 410 compacted.

import (
	"fmt"
	"strconv"
)

func (r *runner) liveChanges() error {
	live, hello := r.key("live"), r.key("hello")
	if err := r.api.put(r.ctx, live, "from the API"); err != nil {
		return err
	}
	if err := r.do(visible(event("put", live)), textHas(event("put", live), "from the API"), visible(row(live))); err != nil {
		return err
	}
	// The key shown in the detail panel follows changes made elsewhere.
	if err := r.api.put(r.ctx, hello, "changed elsewhere"); err != nil {
		return err
	}
	keys, ok, err := r.api.keyCount(r.ctx)
	if err != nil {
		return err
	}
	// The header shows the key count only to an admin token.
	keysShown := notVisible("#server-keys")
	if ok {
		keysShown = textIs("#server-keys", strconv.FormatInt(keys, 10))
	}
	err = r.do(
		textIs("#detail-value", "changed elsewhere"),
		textIs("#detail-version", "3"),
		textIs("#detail-expires", "never"), // a PUT without ttl drops the TTL
		textIs(row(hello)+" td:nth-child(2)", "3"),
		keysShown,
	)
	if err != nil {
		return err
	}
	return r.screenshot("console")
}

// resume cuts the watch stream, changes a key while the console is away,
// and checks that the change arrives once the console has reconnected.
func (r *runner) resume() error {
	if r.cutWatch == nil {
		r.t.Logf("console: no Options.CutWatch; not testing the watch's reconnection")
		return nil
	}
	key := r.key("while-away")
	r.cutWatch()
	if err := r.api.put(r.ctx, key, "sent while disconnected"); err != nil {
		return err
	}
	err := r.do(
		visible(event("put", key)),
		visible(byTestID("watch-status")+`[data-state="live"]`),
		visible(row(key)),
	)
	if err != nil {
		return err
	}
	n, err := evaluate[int](r, fmt.Sprintf("document.querySelectorAll(%s).length", jsString(event("put", key))))
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("the change made while disconnected is in the event log %d times, want once", n)
	}
	return nil
}

// compacted makes the console's resumption fail with 410 and checks that
// it reloads the list (showing a key written meanwhile) and watches again.
func (r *runner) compacted() error {
	if r.compact == nil {
		r.t.Logf("console: no Options.CompactWatch; not testing 410 compacted")
		return nil
	}
	key := r.key("after-compaction")
	r.compact()
	if err := r.api.put(r.ctx, key, "read from the list"); err != nil {
		return err
	}
	return r.do(
		visible(byTestID("event-note")),
		visible(row(key)),
		visible(byTestID("watch-status")+`[data-state="live"]`),
	)
}
