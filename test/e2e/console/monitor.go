package console

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
)

// monitor watches the tab's events for what must never happen, whatever
// the flow does: an uncaught exception, a Content-Security-Policy
// violation, a request to another origin (the console works offline) and
// the token in a URL. It also keeps the console messages for failure
// reports.
type monitor struct {
	origin string
	token  string

	mu       sync.Mutex
	problems []string
	console  []string
	requests int
}

func newMonitor(base *url.URL, token string) *monitor {
	return &monitor{origin: origin(base), token: token}
}

// handle is a chromedp.Listen func: it runs in the tab's event loop, so it
// only records.
func (m *monitor) handle(ev any) {
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		m.request(ev.Request.URL)
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil && d.Exception.Description != "" {
			text += " " + d.Exception.Description
		}
		m.problem("uncaught exception at %s:%d: %s", d.URL, d.LineNumber+1, text)
	case *log.EventEntryAdded:
		e := ev.Entry
		line := fmt.Sprintf("[%s %s] %s", e.Source, e.Level, e.Text)
		if e.URL != "" {
			line += " (" + e.URL + ")"
		}
		m.log(line)
		if e.Source == log.EntrySourceSecurity || strings.Contains(e.Text, "Content Security Policy") {
			m.problem("security: %s", line)
		}
	case *runtime.EventConsoleAPICalled:
		var args []string
		for _, a := range ev.Args {
			if a.Value != nil {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		m.log(fmt.Sprintf("[console.%s] %s", ev.Type, strings.Join(args, " ")))
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			m.problem("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	}
}

func (m *monitor) request(raw string) {
	m.mu.Lock()
	m.requests++
	m.mu.Unlock()
	if m.token != "" && strings.Contains(raw, m.token) {
		m.problem("the token appears in the URL of a request")
		return
	}
	if strings.HasPrefix(raw, "data:") {
		return
	}
	u, err := url.Parse(raw)
	if err != nil || origin(u) != m.origin {
		m.problem("request to another origin than %s: %s", m.origin, raw)
	}
}

func (m *monitor) problem(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.problems = append(m.problems, fmt.Sprintf(format, args...))
}

func (m *monitor) log(line string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.console = append(m.console, line)
}

// err reports what went wrong, or nil.
func (m *monitor) err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.requests == 0 {
		return errors.New("the browser reported no requests at all; the monitor saw nothing")
	}
	if len(m.problems) == 0 {
		return nil
	}
	return fmt.Errorf("the page misbehaved:\n  %s", strings.Join(m.problems, "\n  "))
}

// consoleTail is the last n console messages, for failure reports.
func (m *monitor) consoleTail(n int) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.console[max(0, len(m.console)-n):]...)
}

// origin is scheme://host[:port], without the default port.
func origin(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return strings.ToLower(u.Scheme) + "://" + host
}
