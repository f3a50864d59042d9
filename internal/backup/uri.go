package backup

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
)

// Location is a parsed destination URI.
type Location struct {
	// Scheme is "s3" or "file".
	Scheme string
	// Bucket and Prefix locate an s3 destination; Prefix has no leading
	// or trailing slash ("" for the bucket's root).
	Bucket, Prefix string
	// Path is a file destination's absolute directory.
	Path string
}

// String is the location's URI.
func (l Location) String() string {
	if l.Scheme == "file" {
		return (&url.URL{Scheme: "file", Path: l.Path}).String()
	}
	if l.Prefix == "" {
		return "s3://" + l.Bucket
	}
	return "s3://" + l.Bucket + "/" + l.Prefix
}

// bucketName is S3's rule for bucket names (3 to 63 characters, lowercase
// letters, digits, dots and hyphens, starting and ending with a letter or
// digit).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// ParseURI parses a destination URI, s3://bucket/prefix or file:///path.
// Each error wraps ErrInvalid and names the part that is wrong.
func ParseURI(s string) (Location, error) {
	bad := func(field, format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("%w destination %q: %s: %s", ErrInvalid, s, field, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return bad("uri", "is empty (want s3://bucket/prefix or file:///path)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return bad("uri", "%v", err)
	}
	if u.User != nil {
		return bad("userinfo", "credentials do not belong in the URI (use the environment or files)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return bad("query", "a destination URI takes no query or fragment")
	}
	switch u.Scheme {
	case "s3":
		if u.Port() != "" {
			return bad("bucket", "%q has a port; the endpoint is an S3 option, not part of the URI", u.Host)
		}
		if !bucketName.MatchString(u.Host) || strings.Contains(u.Host, "..") {
			return bad("bucket", "%q is not a valid S3 bucket name (3 to 63 lowercase letters, digits, dots and hyphens)", u.Host)
		}
		prefix := strings.Trim(u.Path, "/")
		for seg := range strings.SplitSeq(prefix, "/") {
			if prefix != "" && (seg == "" || seg == "." || seg == "..") {
				return bad("prefix", "%q has an empty, . or .. segment", prefix)
			}
		}
		return Location{Scheme: "s3", Bucket: u.Host, Prefix: prefix}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return bad("host", "%q: a file URI names a local directory (file:///path)", u.Host)
		}
		if !path.IsAbs(u.Path) {
			return bad("path", "must be absolute (file:///path)")
		}
		if p := path.Clean(u.Path); p == "/" {
			return bad("path", "must not be the root directory")
		}
		return Location{Scheme: "file", Path: path.Clean(u.Path)}, nil
	case "":
		return bad("scheme", "missing (want s3://bucket/prefix or file:///path)")
	}
	return bad("scheme", "%q is not s3 or file", u.Scheme)
}
