package console

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
)

// pollInterval is how often the waits check the page.
const pollInterval = 50 * time.Millisecond

// byTestID is the CSS selector of data-testid="id".
func byTestID(id string) string { return "[data-testid=" + cssString(id) + "]" }

// row is the selector of the list row of key.
func row(key string) string { return byTestID("key-row") + "[data-key=" + cssString(key) + "]" }

// event is the selector of the event log entry of a change of key.
func event(typ, key string) string {
	return byTestID("event") + "[data-type=" + cssString(typ) + "][data-key=" + cssString(key) + "]"
}

// cssString quotes s as a CSS string.
func cssString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\a `).Replace(s) + `"`
}

// do runs actions in the tab, each group bounded by stepTimeout.
func (r *runner) do(actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(r.ctx, stepTimeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// named makes the errors of action say what it was doing.
func named(what string, action chromedp.Action[chromedp.Void]) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		v, err := action(ctx, t)
		if err != nil {
			return v, fmt.Errorf("%s: %w", what, err)
		}
		return v, nil
	}
}

// click clicks the first element sel matches. The console re-renders lists
// when events arrive, so the node found may be replaced before the click
// lands (the protocol's "Could not find node with given id"): then it looks
// again, until the step's deadline.
func click(sel string) chromedp.Action[chromedp.Void] {
	return named("clicking "+sel, func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		for {
			v, err := chromedp.Click(chromedp.CSS(sel))(ctx, t)
			if err == nil || !strings.Contains(err.Error(), "Could not find node with given id") {
				return v, err
			}
			select {
			case <-ctx.Done():
				return v, err
			case <-time.After(pollInterval):
			}
		}
	})
}

func visible(sel string) chromedp.Action[chromedp.Void] {
	return named("waiting for "+sel+" to be visible", chromedp.WaitVisible(chromedp.CSS(sel)))
}

func notVisible(sel string) chromedp.Action[chromedp.Void] {
	return named("waiting for "+sel+" to be hidden", chromedp.WaitNotVisible(chromedp.CSS(sel)))
}

func gone(sel string) chromedp.Action[chromedp.Void] {
	return named("waiting for "+sel+" to go away", chromedp.WaitNotPresent(chromedp.CSS(sel)))
}

// setValue sets the value of a field (not to "": chromedp cannot).
func setValue(sel, v string) chromedp.Action[chromedp.Void] {
	return named(fmt.Sprintf("setting %s to %q", sel, v), chromedp.SetValue(chromedp.CSS(sel), v))
}

// textPredicate is true when the element's text equals (or contains) want.
const textPredicate = `(sel, want, exact) => {
	const n = document.querySelector(sel);
	if (!n) return false;
	const text = ["INPUT", "TEXTAREA", "SELECT"].includes(n.tagName) ? n.value : n.textContent;
	return exact ? text === want : text.includes(want);
}`

// textIs waits until the text (or value) of sel is exactly want.
func textIs(sel, want string) chromedp.Action[chromedp.Void] { return waitText(sel, want, true) }

// textHas waits until the text (or value) of sel contains want.
func textHas(sel, want string) chromedp.Action[chromedp.Void] { return waitText(sel, want, false) }

func waitText(sel, want string, exact bool) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		poll := chromedp.PollFunction[bool](textPredicate,
			chromedp.WithPollingArgs(sel, want, exact),
			chromedp.WithPollingInterval(pollInterval),
			chromedp.WithPollingTimeout(stepTimeout-time.Second))
		_, err := poll(ctx, t)
		if err == nil {
			return chromedp.Void{}, nil
		}
		how := "to contain"
		if exact {
			how = "to be"
		}
		got, gerr := chromedp.Evaluate[string](fmt.Sprintf(
			`(() => { const n = document.querySelector(%s); return n ? (["INPUT", "TEXTAREA", "SELECT"].includes(n.tagName) ? n.value : n.textContent) : "<no such element>"; })()`,
			jsString(sel)))(ctx, t)
		if gerr != nil {
			got = "<unreadable: " + gerr.Error() + ">"
		}
		return chromedp.Void{}, fmt.Errorf("waiting for the text of %s %s %q (it is %q): %w", sel, how, want, got, err)
	}
}

// evaluate runs a JavaScript expression and returns its value.
func evaluate[T any](r *runner, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(r.ctx, stepTimeout)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\u2028", `\u2028`, "\u2029", `\u2029`).Replace(s) + `"`
}

// expectDialog returns the message of the dialog accepted since the last
// call, waiting a little for it.
func (r *runner) expectDialog() (string, error) {
	select {
	case msg := <-r.dialogs:
		return msg, nil
	case <-time.After(stepTimeout):
		return "", errNoDialog
	case <-r.ctx.Done():
		return "", errors.Join(errNoDialog, r.ctx.Err())
	}
}

// rowCount waits until the key list shows n rows.
func rowCount(n int) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.PollFunction[bool](`(sel, n) => document.querySelectorAll(sel).length === n`,
			chromedp.WithPollingArgs(byTestID("key-row"), n),
			chromedp.WithPollingInterval(pollInterval),
			chromedp.WithPollingTimeout(stepTimeout-time.Second))(ctx, t)
		if err != nil {
			return chromedp.Void{}, fmt.Errorf("waiting for %d rows in the key list: %w", n, err)
		}
		return chromedp.Void{}, nil
	}
}
