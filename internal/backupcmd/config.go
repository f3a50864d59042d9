package backupcmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"sigs.k8s.io/yaml"

	"kvstore.dev/kvstore/internal/backup"
	"kvstore.dev/kvstore/internal/config"
)

// Config is the configuration of `kvstore backup`. Field names are the
// keys of its YAML file (--config).
type Config struct {
	// Server is the kvstore server's base URL (http or https).
	Server string `json:"server"`
	// ServerCAFile is a PEM bundle trusted for an https Server (default:
	// the system roots).
	ServerCAFile string `json:"server_ca_file,omitempty"`
	// TokenFile holds the admin token, unless KVSTORE_ADMIN_TOKEN is set
	// (which wins). The token is never taken from a flag value.
	TokenFile string `json:"token_file,omitempty"`
	// Destination is the destination URI: s3://bucket/prefix or
	// file:///path.
	Destination string           `json:"destination"`
	S3          backup.S3Options `json:"s3"`
	Retention   RetentionConfig  `json:"retention"`
	// Schedule is a cron expression (five fields, or @daily, @every 6h,
	// ...; in UTC unless it starts with CRON_TZ=). Empty: back up once and
	// exit.
	Schedule string `json:"schedule,omitempty"`
	// Suspend keeps a scheduled process running (and its metrics served)
	// without taking backups.
	Suspend bool `json:"suspend,omitempty"`
	// MetricsListen is the address of /metrics in scheduled mode; ""
	// serves none.
	MetricsListen string `json:"metrics_listen,omitempty"`
	// ResultFile, in run-once mode, is where the run's outcome is written
	// as JSON (backup.Result: the manifest's name, sha256, size and
	// revision and the backups the retention deleted, or the error),
	// within 4096 bytes: a Kubernetes Job's terminationMessagePath. ""
	// writes none.
	ResultFile string `json:"result_file,omitempty"`
	// MaxRate limits how fast a backup reads the snapshot, in bytes per
	// second with an optional unit ("64MiB", "50M"); "0" is no limit.
	// Default backup.DefaultMaxRate (16MiB), at least 1MiB.
	MaxRate string `json:"max_rate"`
	// Timeout bounds one backup, snapshot and upload.
	Timeout config.Duration `json:"timeout"`
	Log     config.Log      `json:"log"`
}

// RetentionConfig is backup.Retention as written in flags and files: a
// count, and an age with a unit ("30d").
type RetentionConfig struct {
	KeepLast int    `json:"keep_last,omitempty"`
	MaxAge   string `json:"max_age,omitempty"`
}

// MaxBytesPerSecond is MaxRate in bytes per second (0: no limit);
// Validate has checked it.
func (c Config) MaxBytesPerSecond() int64 {
	n, _ := backup.ParseRate(c.MaxRate)
	return n
}

// Retention converts r; Validate has checked it.
func (r RetentionConfig) Retention() backup.Retention {
	age, _ := backup.ParseAge(r.MaxAge)
	return backup.Retention{KeepLast: r.KeepLast, MaxAge: age}
}

// Default is the configuration before the file and flags.
func Default() Config {
	return Config{
		Server:  "http://127.0.0.1:8080",
		MaxRate: backup.FormatRate(backup.DefaultMaxRate),
		Timeout: config.Duration(time.Hour),
		Log:     config.Log{Level: "info", Format: "json"},
	}
}

// Load builds the configuration from Default, the YAML file --config
// names, the flags in args, then validates it. getenv supplies the S3
// credentials' environment.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("kvstore backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var file string
	fs.StringVar(&file, "config", "", "YAML configuration `file` (keys as in docs/backup.md)")
	var c Config
	fs.StringVar(&c.Server, "server", "", "the server's base `URL` (default \"http://127.0.0.1:8080\")")
	fs.StringVar(&c.ServerCAFile, "server-ca-file", "", "CA bundle `file` for an https server")
	fs.StringVar(&c.TokenFile, "token-file", "", "`file` holding the admin token (KVSTORE_ADMIN_TOKEN, when set, wins)")
	fs.StringVar(&c.Destination, "destination", "", "where backups go: s3://bucket/prefix or file:///path")
	s3 := AddS3Flags(fs)
	fs.IntVar(&c.Retention.KeepLast, "keep-last", 0, "keep the newest `N` backups (0: no count limit)")
	fs.StringVar(&c.Retention.MaxAge, "max-age", "", "delete backups older than this `age`: a number and a unit, s, m, h, d or w (\"30d\"; default no limit)")
	fs.StringVar(&c.Schedule, "schedule", "", "cron `expression` (\"0 */6 * * *\", \"@daily\"); without it, back up once and exit")
	fs.BoolVar(&c.Suspend, "suspend", false, "with --schedule: keep running and serving metrics, but take no backups")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "", "with --schedule: `address` of /metrics (default none)")
	fs.StringVar(&c.ResultFile, "result-file", "", "without --schedule: write the outcome (JSON: the manifest, or the error) to this `file`, such as a terminationMessagePath")
	fs.StringVar(&c.MaxRate, "max-rate", "", "bandwidth limit of a backup, bytes per second with an optional unit (\"32MiB\"; 0: none; default \""+backup.FormatRate(backup.DefaultMaxRate)+"\")")
	var timeout time.Duration
	fs.DurationVar(&timeout, "timeout", 0, "bound on one backup (default 1h)")
	fs.StringVar(&c.Log.Level, "log-level", "", "debug, info, warn or error (default \"info\")")
	fs.StringVar(&c.Log.Format, "log-format", "", "json or text (default \"json\")")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("backup: unexpected argument %q", fs.Arg(0))
	}
	cfg := Default()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return Config{}, fmt.Errorf("backup: --config: %w", err)
		}
		if err := parse(b, &cfg); err != nil {
			return Config{}, fmt.Errorf("backup: %s: %w", file, err)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "server":
			cfg.Server = c.Server
		case "server-ca-file":
			cfg.ServerCAFile = c.ServerCAFile
		case "token-file":
			cfg.TokenFile = c.TokenFile
		case "destination":
			cfg.Destination = c.Destination
		case "keep-last":
			cfg.Retention.KeepLast = c.Retention.KeepLast
		case "max-age":
			cfg.Retention.MaxAge = c.Retention.MaxAge
		case "schedule":
			cfg.Schedule = c.Schedule
		case "suspend":
			cfg.Suspend = c.Suspend
		case "metrics-listen":
			cfg.MetricsListen = c.MetricsListen
		case "result-file":
			cfg.ResultFile = c.ResultFile
		case "max-rate":
			cfg.MaxRate = c.MaxRate
		case "timeout":
			cfg.Timeout = config.Duration(timeout)
		case "log-level":
			cfg.Log.Level = c.Log.Level
		case "log-format":
			cfg.Log.Format = c.Log.Format
		}
	})
	s3.apply(fs, &cfg.S3)
	cfg.S3.Getenv = getenv
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// parse overlays the YAML document b on cfg; unknown keys are errors.
func parse(b []byte, cfg *Config) error {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return fmt.Errorf("parse YAML: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	return nil
}

// cronParser is cron.ParseStandard's: five fields or a descriptor.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Validate checks every field before any I/O; each error names its field
// (the YAML key; the flag is the same with dashes).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if u, err := url.Parse(c.Server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		bad("server", "%q is not an http(s)://host[:port] URL (without credentials)", c.Server)
	}
	if c.Destination == "" {
		bad("destination", "is required: s3://bucket/prefix or file:///path")
	} else if loc, err := backup.ParseURI(c.Destination); err != nil {
		bad("destination", "%v", err)
	} else if loc.Scheme == "s3" {
		if err := c.S3.Validate(); err != nil {
			bad("s3", "%v", err)
		}
	}
	if c.Retention.KeepLast < 0 {
		bad("retention.keep_last", "%d is negative", c.Retention.KeepLast)
	}
	if _, err := backup.ParseAge(c.Retention.MaxAge); err != nil {
		bad("retention.max_age", "%v", err)
	}
	if c.Schedule != "" {
		if _, err := cronParser.Parse(c.Schedule); err != nil {
			bad("schedule", "%q: %v", c.Schedule, err)
		}
	} else {
		if c.Suspend {
			bad("suspend", "needs a schedule")
		}
		if c.MetricsListen != "" {
			bad("metrics_listen", "is served in scheduled mode only (set schedule)")
		}
	}
	if c.Schedule != "" && c.ResultFile != "" {
		bad("result_file", "is written in run-once mode only (unset schedule)")
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics_listen", "%q is not host:port", c.MetricsListen)
		}
	}
	if n, err := backup.ParseRate(c.MaxRate); err != nil {
		bad("max_rate", "%v", err)
	} else if err := backup.CheckRate(n); err != nil {
		bad("max_rate", "%v", err)
	}
	if d := c.Timeout.D(); d < time.Second || d > 48*time.Hour {
		bad("timeout", "%s is out of range [1s, 48h]", d)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not json or text", c.Log.Format)
	}
	if len(errs) > 0 {
		return fmt.Errorf("backup: invalid configuration: %w", errors.Join(errs...))
	}
	return nil
}

// Token returns the admin token: KVSTORE_ADMIN_TOKEN, else the contents of
// TokenFile. It is read at each backup, so a rotated file is picked up.
func (c Config) Token(getenv func(string) string) (string, error) {
	if t := getenv(config.EnvAdminToken); t != "" {
		return t, nil
	}
	if c.TokenFile == "" {
		return "", fmt.Errorf("no admin token: set %s or token_file (--token-file)", config.EnvAdminToken)
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("token_file: %w", err)
	}
	t := strings.TrimRight(string(b), "\r\n")
	if t == "" {
		return "", fmt.Errorf("token_file: %s is empty", c.TokenFile)
	}
	return t, nil
}

// S3Flags are the --s3-* flags, shared by `kvstore backup` and `kvstore
// restore`.
type S3Flags struct {
	o backup.S3Options
}

// AddS3Flags defines the --s3-* flags on fs.
func AddS3Flags(fs *flag.FlagSet) *S3Flags {
	f := &S3Flags{}
	fs.StringVar(&f.o.Endpoint, "s3-endpoint", "", "S3 endpoint `URL`, http(s)://host[:port] (default https://s3.amazonaws.com)")
	fs.StringVar(&f.o.Region, "s3-region", "", "S3 region (default us-east-1)")
	fs.StringVar(&f.o.BucketLookup, "s3-bucket-lookup", "", "path, dns or auto (default auto: dns for AWS, path elsewhere)")
	fs.StringVar(&f.o.CAFile, "s3-ca-file", "", "CA bundle `file` trusted for the S3 endpoint, besides the system's")
	fs.StringVar(&f.o.AccessKeyFile, "s3-access-key-file", "", "`file` holding the S3 access key (default: $AWS_ACCESS_KEY_ID)")
	fs.StringVar(&f.o.SecretKeyFile, "s3-secret-key-file", "", "`file` holding the S3 secret key (default: $AWS_SECRET_ACCESS_KEY)")
	return f
}

// apply overlays the flags that were set on o.
func (f *S3Flags) apply(fs *flag.FlagSet, o *backup.S3Options) {
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "s3-endpoint":
			o.Endpoint = f.o.Endpoint
		case "s3-region":
			o.Region = f.o.Region
		case "s3-bucket-lookup":
			o.BucketLookup = f.o.BucketLookup
		case "s3-ca-file":
			o.CAFile = f.o.CAFile
		case "s3-access-key-file":
			o.AccessKeyFile = f.o.AccessKeyFile
		case "s3-secret-key-file":
			o.SecretKeyFile = f.o.SecretKeyFile
		}
	})
}

// Options returns the flags' S3 options, reading credentials through getenv.
func (f *S3Flags) Options(getenv func(string) string) backup.S3Options {
	o := f.o
	o.Getenv = getenv
	return o
}
