// Package kvctl is the kvctl command line: a thin layer over package
// client that reads its settings from flags and the environment, runs one
// subcommand and turns the outcome into output and an exit code a script
// can branch on (the Exit constants). cmd/kvctl calls Run; tests call it
// too, in process.
package kvctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"kvstore.dev/kvstore/client"
)

// Exit codes of Run (docs/api.md, "kvctl").
const (
	ExitOK                 = 0 // done
	ExitError              = 1 // any other error
	ExitUsage              = 2 // bad command line; nothing was sent
	ExitNotFound           = 3 // no such key (get, del) or member
	ExitPreconditionFailed = 4 // --if-match, --if-exists or --create did not hold; nothing was written
	ExitOutcomeUnknown     = 5 // the write may or may not have been applied
	ExitUnavailable        = 6 // no server answered, or none had a quorum; nothing was written
	ExitAuth               = 7 // the token is missing, unknown or not allowed to do this
)

// DefaultURL is the endpoint when neither --url nor KVSTORE_URL is set.
const DefaultURL = "http://127.0.0.1:8080"

// usageError is a bad command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// env is what a command runs with.
type env struct {
	ctx            context.Context
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	g              *globals
}

// globals are the flags every command takes.
type globals struct {
	url, cacert, tokenFile, output string
	timeout                        time.Duration
	http1                          bool
	token                          string // set only to refuse it
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.url, "url", g.url, "endpoints, comma-separated (default $KVSTORE_URL, else "+DefaultURL+")")
	fs.StringVar(&g.cacert, "cacert", g.cacert, "PEM file of the CA that signed the server's certificate (default $KVSTORE_CACERT)")
	fs.StringVar(&g.tokenFile, "token-file", g.tokenFile, "file holding the bearer token (default $KVSTORE_TOKEN, else $KVSTORE_TOKEN_FILE)")
	fs.StringVar(&g.output, "o", g.output, "output: text or json")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "bound of each command but watch and snapshot")
	fs.BoolVar(&g.http1, "http1", g.http1, "speak HTTP/1.1 only (default HTTP/2: h2c on http://, ALPN on https://)")
	fs.StringVar(&g.token, "token", "", "refused: a token on the command line ends up in shell history and process lists")
}

// commands maps each subcommand to its function.
var commands = map[string]func(e *env, args []string) error{
	"get":        cmdGet,
	"put":        cmdPut,
	"del":        cmdDel,
	"ls":         cmdLs,
	"watch":      cmdWatch,
	"status":     cmdStatus,
	"cluster":    cmdCluster,
	"snapshot":   cmdSnapshot,
	"completion": cmdCompletion,
}

const usage = `usage: kvctl [flags] <command> [args]

commands:
  get KEY                      print a key's value (-o json: with its metadata)
  put KEY VALUE|-f FILE|-      write a key (from an argument, a file, or stdin)
      [--ttl 1h] [--if-match REV] [--if-exists] [--create] [--content-type T]
  del KEY [--if-match REV]     delete a key
  del --prefix PREFIX          delete every key under a prefix
  ls [PREFIX] [--keys-only] [--limit N]
  watch [PREFIX] [--since REV] [--count N]
  status                       server version, revision, uptime
  cluster [status]             the Raft cluster (admin)
  cluster add ID ADDRESS [--nonvoter] | cluster remove ID
  snapshot FILE|-              download a consistent copy of the database (admin)
  completion bash|zsh          print a shell completion script

environment: KVSTORE_URL (comma-separated endpoints), KVSTORE_TOKEN or
KVSTORE_TOKEN_FILE, KVSTORE_CACERT.
exit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 precondition failed,
5 outcome unknown, 6 unavailable, 7 unauthorized or forbidden.

flags (accepted before or after the command):
`

// Run runs kvctl with args (without the program name) and returns its exit
// code. getenv reads the environment (os.Getenv).
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	g := &globals{output: "text", timeout: 30 * time.Second}
	fs := newFlagSet("kvctl", g, stderr)
	rest, err := parseArgs(fs, args, true)
	if err == nil && len(rest) == 0 {
		err = usagef("no command given")
	}
	if err == nil {
		cmd, ok := commands[rest[0]]
		switch {
		case rest[0] == "help":
			printUsage(stdout, fs)
			return ExitOK
		case !ok:
			err = usagef("unknown command %q", rest[0])
		default:
			e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, g: g}
			err = cmd(e, rest[1:])
		}
	}
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "kvctl: %v\n", err)
	}
	code := exitCode(err)
	if code == ExitUsage {
		fmt.Fprintln(stderr, "run 'kvctl help' for usage")
	}
	return code
}

func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, usage)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// exitCode maps an error to the exit codes.
func exitCode(err error) int {
	var ue *usageError
	var ce *client.Error
	var urlErr *url.Error
	var tlsErr *tls.CertificateVerificationError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &tlsErr):
		return ExitError // the server was reached and not trusted: retrying will not help
	case errors.Is(err, client.ErrOutcomeUnknown):
		return ExitOutcomeUnknown
	case errors.Is(err, client.ErrNotFound), errors.Is(err, client.ErrNotMember):
		return ExitNotFound
	case errors.Is(err, client.ErrPreconditionFailed):
		return ExitPreconditionFailed
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrForbidden):
		return ExitAuth
	case errors.Is(err, client.ErrNoQuorum), errors.Is(err, client.ErrUnavailable):
		return ExitUnavailable
	case errors.As(err, &urlErr) && !errors.As(err, &ce):
		return ExitUnavailable // no answer from any endpoint (a read, or a write never sent)
	}
	return ExitError
}

// newFlagSet is a FlagSet of the command name with the global flags.
func newFlagSet(name string, g *globals, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	g.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage of %s (run 'kvctl help' for the commands):\n", name)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags anywhere among args (after "--" everything is
// an argument) and returns the arguments. With stopAtFirst it stops at the
// first argument (the command), returning it and all that follows.
func parseArgs(fs *flag.FlagSet, args []string, stopAtFirst bool) ([]string, error) {
	var after []string
	if i := slices.Index(args, "--"); i >= 0 && !stopAtFirst {
		args, after = args[:i], args[i+1:]
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, &usageError{err.Error()}
		}
		if g := fs.Lookup("token"); g != nil && g.Value.String() != "" {
			return nil, usagef("--token is refused: a token on the command line ends up in shell history and process lists; set KVSTORE_TOKEN or KVSTORE_TOKEN_FILE, or pass --token-file")
		}
		args = fs.Args()
		if len(args) == 0 || stopAtFirst {
			return append(append(pos, args...), after...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

// client builds the client from the flags and the environment.
func (e *env) client() (*client.Client, error) {
	endpoints := firstSet(e.g.url, e.getenv("KVSTORE_URL"), DefaultURL)
	for _, ep := range strings.Split(endpoints, ",") {
		u, err := url.Parse(strings.TrimSpace(ep))
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, usagef("endpoint %q: want a URL such as http://127.0.0.1:8080", ep)
		}
	}
	token, err := e.token()
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithToken(token)}
	if ca := firstSet(e.g.cacert, e.getenv("KVSTORE_CACERT")); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in the file", ca)
		}
		opts = append(opts, client.WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
	}
	if e.g.http1 {
		opts = append(opts, client.WithHTTP1())
	}
	return client.New(endpoints, opts...), nil
}

// token is the bearer token: --token-file, else $KVSTORE_TOKEN, else the
// file $KVSTORE_TOKEN_FILE names; "" when none is set (the server then
// answers 401).
func (e *env) token() (string, error) {
	file := e.g.tokenFile
	if file == "" {
		if t := e.getenv("KVSTORE_TOKEN"); t != "" {
			return strings.TrimSpace(t), nil
		}
		file = e.getenv("KVSTORE_TOKEN_FILE")
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("token file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// bounded is e.ctx with the --timeout.
func (e *env) bounded() (context.Context, context.CancelFunc) {
	if e.g.timeout <= 0 {
		return context.WithCancel(e.ctx)
	}
	return context.WithTimeout(e.ctx, e.g.timeout)
}

func (e *env) json() (bool, error) {
	switch e.g.output {
	case "text", "":
		return false, nil
	case "json":
		return true, nil
	}
	return false, usagef("-o %q: want text or json", e.g.output)
}

func firstSet(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
