// Package backup keeps kvstore snapshots (GET /api/v1/snapshot) in a
// Destination: S3-compatible object storage (minio-go) or a directory,
// such as a mounted volume. It is the code under `kvstore backup`, `kvstore
// restore --from URI` and the operator's backups.
//
// A backup is two objects under the destination's prefix:
//
//	kvstore-20261202T173000.123Z.db    the snapshot, as the server streamed it
//	kvstore-20261202T173000.123Z.json  its Manifest: SHA-256, size, revision, times, server version
//
// Write streams the snapshot to the destination while it computes the
// SHA-256 and the size (nothing is staged on a local disk), and writes the
// manifest only once the data object is complete: a backup without a
// manifest is incomplete and is neither listed nor restored. List reads the
// manifests, Prune deletes by Retention (never the newest backup), and Open
// and Fetch read a backup back, failing with ErrCorrupt when its bytes do not
// match the manifest.
//
// Destinations are named by URI (ParseURI): s3://bucket/prefix or
// file:///path. The S3 endpoint, region, bucket lookup, CA and credentials
// are S3Options; credentials come from the environment or from files,
// never from flags, and are never logged.
//
// Every function is safe for concurrent use as far as its Destination is;
// both implementations here are.
package backup
