// Package console drives kvstore's web console (package web) in a real
// browser, Debian's chromium through chromedp, through one whole flow: sign
// in with a token, create a key with a TTL, list it, open it, edit it, see
// changes made by others arrive live, get a 412 for a concurrent edit,
// delete it after a confirmation dialog, show a problem+json error, and
// sign out. The direct API calls it makes to check each step go to the same
// base URL, so the flow works against the server with the console mounted,
// a test proxy (browser_test.go here) or nginx over HTTPS (the compose e2e
// test).
//
// The browser is never downloaded: chromium must be installed
// (hack/install-chromium.sh); RequireChromium finds it or skips the test.
package console

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"testing"
)

// Options configure Run. The zero value suits a plain-HTTP console on
// loopback.
type Options struct {
	// ChromiumPath is the browser to run; empty means RequireChromium.
	ChromiumPath string

	// HostResolverRules is given to chromium as --host-resolver-rules, so
	// that a test can browse https://kvstore.test/ served on loopback, e.g.
	// "MAP kvstore.test 127.0.0.1:8443". HTTPClient must resolve the same
	// way.
	HostResolverRules string

	// TrustedSPKIHashes are the base64 SHA-256 hashes of the
	// SubjectPublicKeyInfo of server certificates that chromium accepts
	// although no trusted CA signed them (see SPKIHash), given as
	// --ignore-certificate-errors-spki-list. Chromium cannot take a CA file;
	// pinning the exact key keeps every other certificate check on.
	TrustedSPKIHashes []string

	// HTTPClient makes the flow's direct API calls. Nil means a plain client;
	// over HTTPS give one that trusts the server's CA.
	HTTPClient *http.Client

	// KeyPrefix is where the flow creates its keys (it ends in "/"); empty
	// means a fresh "demo/run-<random>/", so that runs never collide. The
	// keys under it are deleted at the end.
	KeyPrefix string

	// CutWatch, when set, ends the console's open watch streams (a proxy in
	// front of the server can do that). The flow then changes a key while
	// the console is disconnected and checks that the change still arrives
	// exactly once: the console must reconnect with Last-Event-ID.
	CutWatch func()

	// CompactWatch, when set, ends the open watch streams and makes the
	// server (or a proxy) answer the console's next resumption with 410
	// compacted. The flow checks that the console then reloads the list,
	// which shows a key written meanwhile, and watches again.
	CompactWatch func()

	// Name starts the names of the screenshots (<Name>-console.png and so
	// on), so that several runs can share ArtifactsDir; empty means
	// "console".
	Name string

	// ArtifactsDir receives the screenshots; empty means $KVSTORE_TEST_ARTIFACTS,
	// else a t.TempDir().
	ArtifactsDir string
}

// Run drives the console at baseURL (such as "http://127.0.0.1:8080", no
// trailing slash) with an admin or read-write token through the whole flow,
// logging each step and the screenshot paths with t.Logf. ctx bounds
// everything, the browser included. It returns the first failure, with the
// error area's text and the browser's console messages when they help.
func Run(ctx context.Context, t testing.TB, baseURL, token string, opts Options) error {
	t.Helper()
	r, err := newRunner(ctx, t, baseURL, token, opts)
	if err != nil {
		return err
	}
	defer r.close()
	return r.run()
}

// RequireChromium returns the path of the chromium on the PATH. When there
// is none it fails the test if the CI variable is set (CI must run the
// browser tests) and skips it otherwise, loudly.
func RequireChromium(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err == nil {
		return path
	}
	const how = "run hack/install-chromium.sh (Debian's chromium package) to install it"
	if os.Getenv("CI") != "" {
		t.Fatalf("chromium is not on the PATH (%v): %s", err, how)
	}
	t.Skipf("SKIPPING the browser test: chromium is not on the PATH (%v); %s", err, how)
	return ""
}

// SPKIHash is the pin of cert for Options.TrustedSPKIHashes: the base64
// SHA-256 of its SubjectPublicKeyInfo.
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}
