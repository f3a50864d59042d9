package console

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// step is one stage of the flow.
type step struct {
	name string
	run  func() error
}

// run drives the flow, then checks what the monitor saw. The keys it made
// are deleted even when a step fails.
func (r *runner) run() error {
	defer r.cleanup()
	steps := []step{
		{"open the console", r.open},
		{"sign in with the token", r.signIn},
		{"reload keeps the session", r.reload},
		{"browse the test prefix and watch it", r.browse},
		{"create a key with a TTL", r.create},
		{"open the key from the list", r.openFromList},
		{"edit the key", r.edit},
		{"see changes made through the API live", r.liveChanges},
		{"the watch resumes after a disconnect", r.resume},
		{"a compacted history reloads the list", r.compacted},
		{"a binary value shows as a hex dump", r.binary},
		{"a concurrent edit is refused with 412", r.conflict},
		{"delete the key after confirming", r.remove},
		{"an invalid TTL shows the problem", r.invalidTTL},
		{"a key with a .. segment is refused", r.invalidKey},
		{"page through the keys", r.pages},
		{"the layout fits a phone", r.phone},
		{"sign out", r.signOut},
	}
	for i, s := range steps {
		start := time.Now()
		if err := s.run(); err != nil {
			return r.failure(fmt.Errorf("console: step %d/%d %q: %w", i+1, len(steps), s.name, err))
		}
		r.t.Logf("console: %2d/%d %-42s ok (%v)", i+1, len(steps), s.name, time.Since(start).Round(time.Millisecond))
	}
	return r.mon.err()
}

// failure adds a screenshot and what the page showed to err.
func (r *runner) failure(err error) error {
	var b strings.Builder
	b.WriteString(err.Error())
	if shotErr := r.screenshot("failure"); shotErr != nil {
		fmt.Fprintf(&b, "\n(no failure screenshot: %v)", shotErr)
	}
	if text, e := evaluate[string](r, `(() => { const a = document.getElementById("error-area"); return a && !a.hidden ? a.innerText : ""; })()`); e == nil && text != "" {
		fmt.Fprintf(&b, "\nthe error area shows: %q", text)
	}
	if lines := r.mon.consoleTail(20); len(lines) > 0 {
		fmt.Fprintf(&b, "\nbrowser console (last %d):\n  %s", len(lines), strings.Join(lines, "\n  "))
	}
	if monErr := r.mon.err(); monErr != nil {
		fmt.Fprintf(&b, "\n%v", monErr)
	}
	return errors.New(b.String())
}

func (r *runner) cleanup() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), stepTimeout)
	defer cancel()
	if err := r.api.deletePrefix(ctx, r.prefix); err != nil {
		r.t.Logf("console: cleaning up the keys under %s: %v", r.prefix, err)
	}
}

func (r *runner) key(name string) string { return r.prefix + name }

func (r *runner) open() error {
	if err := r.do(chromedp.Navigate(r.base+"/"), visible("#login-form")); err != nil {
		return err
	}
	title, err := evaluate[string](r, "document.title")
	if err != nil {
		return err
	}
	if title != "kvstore console" {
		return fmt.Errorf("title is %q, want %q", title, "kvstore console")
	}
	return r.screenshot("login")
}

func (r *runner) signIn() error {
	err := r.do(
		// A wrong token is refused with the server's problem...
		chromedp.SendKeys(chromedp.CSS("#login-token"), "not-"+r.token),
		click("#login-submit"),
		visible("#error-area"),
		textIs("#error-title", "Unauthorized"),
		textHas("#error-code", "401"),
		visible("#login-form"),
		// ...and the right one gets in.
		setValue("#login-token", r.token),
		click("#login-submit"),
		notVisible("#error-area"),
		visible("#console-view"),
		visible(byTestID("server-version")),
	)
	if err != nil {
		return err
	}
	version, err := evaluate[string](r, `document.getElementById("server-version").textContent`)
	if err != nil {
		return err
	}
	if version == "" {
		return errors.New("the server version is not shown")
	}
	r.t.Logf("console: signed in; the console shows server version %s", version)
	return r.checkTokenStorage(true)
}

// checkTokenStorage checks that the token is in sessionStorage (or not) and
// never in localStorage, a cookie or the URL.
func (r *runner) checkTokenStorage(signedIn bool) error {
	type storage struct {
		Session  int    `json:"session"`
		Token    string `json:"token"`
		Local    int    `json:"local"`
		Cookie   string `json:"cookie"`
		Location string `json:"location"`
	}
	s, err := evaluate[storage](r, `({session: sessionStorage.length, token: sessionStorage.getItem("kvstore.token") || "",
		local: localStorage.length, cookie: document.cookie, location: location.href})`)
	if err != nil {
		return err
	}
	switch {
	case signedIn && s.Token != r.token:
		return errors.New("the token is not in sessionStorage")
	case !signedIn && s.Session != 0:
		return fmt.Errorf("sessionStorage still holds %d items after signing out", s.Session)
	case s.Local != 0:
		return fmt.Errorf("localStorage holds %d items; it must hold none", s.Local)
	case s.Cookie != "":
		return errors.New("the page has cookies; it must have none")
	case strings.Contains(s.Location, r.token):
		return errors.New("the token is in the page's URL")
	}
	return nil
}

func (r *runner) reload() error {
	return r.do(chromedp.Reload(), visible("#console-view"), notVisible("#login-view"))
}

func (r *runner) browse() error {
	return r.do(
		setValue("#prefix-input", r.prefix),
		click("#browse-submit"),
		textHas("#watch-scope", r.prefix),
		visible(byTestID("watch-status")+`[data-state="live"]`),
		visible("#key-empty"),
	)
}

// phone checks the layout on a small screen: nothing wider than it.
func (r *runner) phone() error {
	err := r.do(
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		visible("#keys-panel"),
	)
	if err != nil {
		return err
	}
	defer func() { _ = r.do(chromedp.ResetViewport()) }()
	overflow, err := evaluate[int](r, "document.documentElement.scrollWidth - document.documentElement.clientWidth")
	if err != nil {
		return err
	}
	if err := r.screenshot("phone"); err != nil {
		return err
	}
	if overflow > 0 {
		return fmt.Errorf("the page is %dpx wider than a 390px screen", overflow)
	}
	return nil
}

func (r *runner) signOut() error {
	if err := r.do(click("#logout"), visible("#login-form"), notVisible("#console-view")); err != nil {
		return err
	}
	return r.checkTokenStorage(false)
}
