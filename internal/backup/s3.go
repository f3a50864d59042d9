package backup

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Environment variables that hold S3 credentials (the AWS SDKs' names).
const (
	EnvAccessKey    = "AWS_ACCESS_KEY_ID"
	EnvSecretKey    = "AWS_SECRET_ACCESS_KEY"
	EnvSessionToken = "AWS_SESSION_TOKEN"
)

// DefaultPartSize is the multipart part size of S3 uploads. A snapshot's
// size is not known before it has streamed, so each part is buffered in
// memory (one at a time), and S3's 10 000 parts cap a backup at 160 GiB.
const DefaultPartSize = 16 << 20

// S3Options configure an S3-compatible destination. The zero value is AWS
// S3 in us-east-1 with credentials from the environment.
type S3Options struct {
	// Endpoint is the service's URL, https://host[:port] or
	// http://host[:port] (default https://s3.amazonaws.com).
	Endpoint string `json:"endpoint,omitempty"`
	// Region is the bucket's region (default us-east-1).
	Region string `json:"region,omitempty"`
	// BucketLookup is "path" (https://host/bucket/key, what most
	// non-AWS services want), "dns" (https://bucket.host/key) or "auto"
	// (the default: dns for AWS, path for every other endpoint).
	BucketLookup string `json:"bucket_lookup,omitempty"`
	// CAFile is a PEM bundle of CAs trusted for the endpoint, in
	// addition to the system's.
	CAFile string `json:"ca_file,omitempty"`
	// CAPEM is a PEM bundle trusted in addition, given in memory (the
	// operator's, read from a Secret: its root filesystem is read-only).
	CAPEM []byte `json:"-"`
	// AccessKeyFile and SecretKeyFile hold the credentials (a trailing
	// newline is ignored); when empty, AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY are used (and AWS_SESSION_TOKEN if set).
	AccessKeyFile string `json:"access_key_file,omitempty"`
	SecretKeyFile string `json:"secret_key_file,omitempty"`
	// PartSize is the multipart part size in bytes (default
	// DefaultPartSize, at least 5 MiB).
	PartSize int64 `json:"part_size,omitempty"`
	// Getenv reads the environment (default os.Getenv).
	Getenv func(string) string `json:"-"`
}

// Validate checks the options without reading any file.
func (o S3Options) Validate() error {
	if o.Endpoint != "" {
		if _, _, err := parseEndpoint(o.Endpoint); err != nil {
			return err
		}
	}
	switch o.BucketLookup {
	case "", "auto", "path", "dns":
	default:
		return fmt.Errorf("%w s3 option bucket_lookup: %q is not auto, path or dns", ErrInvalid, o.BucketLookup)
	}
	if o.PartSize != 0 && (o.PartSize < 5<<20 || o.PartSize > 5<<30) {
		return fmt.Errorf("%w s3 option part_size: %d is out of range 5 MiB..5 GiB", ErrInvalid, o.PartSize)
	}
	if (o.AccessKeyFile == "") != (o.SecretKeyFile == "") {
		return fmt.Errorf("%w s3 options access_key_file and secret_key_file: set both or neither", ErrInvalid)
	}
	return nil
}

func parseEndpoint(s string) (host string, secure bool, err error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return "", false, fmt.Errorf("%w s3 option endpoint: %q is not http(s)://host[:port]", ErrInvalid, s)
	}
	return u.Host, u.Scheme == "https", nil
}

// S3 is a Destination in an S3 bucket, under a prefix.
type S3 struct {
	client   *minio.Client
	bucket   string
	prefix   string // "" or ending in "/"
	partSize uint64
	endpoint string
}

// NewS3 returns the destination of bucket and prefix with opts. It reads
// the credential and CA files, but does not contact the endpoint.
func NewS3(bucket, prefix string, opts S3Options) (*S3, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Endpoint == "" {
		opts.Endpoint = "https://s3.amazonaws.com"
	}
	if opts.Region == "" {
		opts.Region = "us-east-1"
	}
	if opts.PartSize == 0 {
		opts.PartSize = DefaultPartSize
	}
	host, secure, _ := parseEndpoint(opts.Endpoint)
	creds, err := opts.credentials()
	if err != nil {
		return nil, err
	}
	tr, err := s3Transport(secure, opts.CAFile, opts.CAPEM)
	if err != nil {
		return nil, err
	}
	lookup := map[string]minio.BucketLookupType{"": minio.BucketLookupAuto, "auto": minio.BucketLookupAuto,
		"path": minio.BucketLookupPath, "dns": minio.BucketLookupDNS}[opts.BucketLookup]
	client, err := minio.New(host, &minio.Options{
		Creds:        creds,
		Secure:       secure,
		Transport:    tr,
		Region:       opts.Region,
		BucketLookup: lookup,
		MaxRetries:   3,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client for %s: %w", opts.Endpoint, err)
	}
	if prefix != "" {
		prefix = strings.Trim(prefix, "/") + "/"
	}
	return &S3{client: client, bucket: bucket, prefix: prefix, partSize: uint64(opts.PartSize), endpoint: opts.Endpoint}, nil
}

func (o S3Options) credentials() (*credentials.Credentials, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if o.AccessKeyFile != "" {
		id, err := readSecret("s3 access_key_file", o.AccessKeyFile)
		if err != nil {
			return nil, err
		}
		secret, err := readSecret("s3 secret_key_file", o.SecretKeyFile)
		if err != nil {
			return nil, err
		}
		return credentials.NewStaticV4(id, secret, ""), nil
	}
	id, secret := getenv(EnvAccessKey), getenv(EnvSecretKey)
	if id == "" || secret == "" {
		return nil, fmt.Errorf("%w s3 credentials: set %s and %s, or the access and secret key files", ErrInvalid, EnvAccessKey, EnvSecretKey)
	}
	return credentials.NewStaticV4(id, secret, getenv(EnvSessionToken)), nil
}

// readSecret reads a one-line secret file; what refers to it in errors
// (the file's contents never appear in one).
func readSecret(what, file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty", what, file)
	}
	return s, nil
}

func s3Transport(secure bool, caFile string, caPEM []byte) (*http.Transport, error) {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	if !secure {
		return tr, nil
	}
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" && len(caPEM) == 0 {
		return tr, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("s3 ca_file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3 ca_file: %s holds no PEM certificate", caFile)
		}
	}
	if len(caPEM) > 0 && !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("s3 ca: the bundle holds no PEM certificate")
	}
	tr.TLSClientConfig.RootCAs = pool
	return tr, nil
}

// URI is s3://bucket/prefix.
func (s *S3) URI() string {
	return Location{Scheme: "s3", Bucket: s.bucket, Prefix: strings.TrimSuffix(s.prefix, "/")}.String()
}

// Put streams r into the object key with a multipart upload of unknown
// size; minio-go aborts the upload when r fails, so nothing appears.
func (s *S3) Put(ctx context.Context, key string, r io.Reader) error {
	_, err := s.client.PutObject(ctx, s.bucket, s.prefix+key, r, -1, minio.PutObjectOptions{
		ContentType: contentType(key),
		PartSize:    s.partSize,
	})
	if err != nil {
		return s.wrap("put", key, err)
	}
	return nil
}

func contentType(key string) string {
	if strings.HasSuffix(key, manifestExt) {
		return "application/json"
	}
	return "application/octet-stream"
}

// Get opens the object key. Its first read happens here, so a missing
// object is ErrNotFound from Get.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, s.prefix+key, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap("get", key, err)
	}
	if _, err := obj.Stat(); err != nil {
		obj.Close()
		return nil, s.wrap("get", key, err)
	}
	return &s3Reader{obj: obj, s: s, key: key}, nil
}

type s3Reader struct {
	obj *minio.Object
	s   *S3
	key string
}

func (r *s3Reader) Read(p []byte) (int, error) {
	n, err := r.obj.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = r.s.wrap("read", r.key, err)
	}
	return n, err
}

func (r *s3Reader) Close() error { return r.obj.Close() }

// List lists the objects directly under the prefix.
func (s *S3) List(ctx context.Context) ([]string, error) {
	var keys []string
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix}) {
		if obj.Err != nil {
			return nil, s.wrap("list", "", obj.Err)
		}
		if k := strings.TrimPrefix(obj.Key, s.prefix); k != "" && !strings.Contains(k, "/") {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// Delete removes the object key.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.client.RemoveObject(ctx, s.bucket, s.prefix+key, minio.RemoveObjectOptions{}); err != nil {
		if resp := minio.ToErrorResponse(err); resp.Code == minio.NoSuchKey {
			return nil
		}
		return s.wrap("delete", key, err)
	}
	return nil
}

// wrap says what failed where, with S3's error code and HTTP status when
// the service answered; a missing object or bucket wraps ErrNotFound.
func (s *S3) wrap(op, key string, err error) error {
	where := s.URI() + "/" + key
	if key == "" {
		where = s.URI()
	}
	resp := minio.ToErrorResponse(err)
	if resp.StatusCode == 0 {
		return fmt.Errorf("s3 %s %s at %s: %w", op, where, s.endpoint, err)
	}
	what := fmt.Sprintf("s3 %s %s at %s: %s (%s, HTTP %d)", op, where, s.endpoint, strings.TrimSuffix(resp.Message, "."), resp.Code, resp.StatusCode)
	switch {
	case resp.Code == minio.NoSuchKey || resp.Code == minio.NoSuchBucket:
		return fmt.Errorf("%w: %s", ErrNotFound, what)
	case resp.StatusCode == http.StatusForbidden:
		what += "; check the credentials and the bucket's policy"
	}
	return &s3Error{msg: what, err: err}
}

// s3Error is an error the service answered: its message says it all, and
// it unwraps to minio's ErrorResponse.
type s3Error struct {
	msg string
	err error
}

func (e *s3Error) Error() string { return e.msg }
func (e *s3Error) Unwrap() error { return e.err }
