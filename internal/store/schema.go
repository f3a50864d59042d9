package store

import (
	"encoding/binary"
	"fmt"
)

// Every bucket the store uses, created together in one transaction at open.
var (
	// bucketKV maps key -> encoded record (metadata + content type + value).
	bucketKV = []byte("kv")
	// bucketTTL is the expiry index: big-endian expires_at (8 bytes) || key -> nil,
	// so a cursor walks keys in expiry order.
	bucketTTL = []byte("ttl")
	// bucketMeta holds the store-wide counters below.
	bucketMeta = []byte("meta")

	allBuckets = [][]byte{bucketKV, bucketTTL, bucketMeta}
)

// Keys in bucketMeta. Values are big-endian uint64.
var (
	metaRevision     = []byte("revision")
	metaAppliedIndex = []byte("applied_index")
	metaKeyCount     = []byte("key_count")
	metaSchema       = []byte("schema_version")
)

// schemaVersion is written at creation and checked at open.
const schemaVersion = 1

// recordVersion is the first byte of every encoded record.
const recordVersion = 1

// recordHeader is the fixed-size prefix of an encoded record:
// version(1) create_rev(8) mod_rev(8) version(8) expires_at(8) ctype_len(2).
const recordHeader = 1 + 8 + 8 + 8 + 8 + 2

// record is a stored key's metadata and value.
type record struct {
	CreateRevision uint64
	ModRevision    uint64
	Version        uint64
	ExpiresAt      int64 // Unix nanoseconds; 0 means no TTL.
	ContentType    string
	Value          []byte
}

func (r *record) encode() []byte {
	buf := make([]byte, recordHeader+len(r.ContentType)+len(r.Value))
	buf[0] = recordVersion
	binary.BigEndian.PutUint64(buf[1:], r.CreateRevision)
	binary.BigEndian.PutUint64(buf[9:], r.ModRevision)
	binary.BigEndian.PutUint64(buf[17:], r.Version)
	binary.BigEndian.PutUint64(buf[25:], uint64(r.ExpiresAt))
	binary.BigEndian.PutUint16(buf[33:], uint16(len(r.ContentType)))
	n := copy(buf[recordHeader:], r.ContentType)
	copy(buf[recordHeader+n:], r.Value)
	return buf
}

// decodeRecord parses b. When copyValue is false the returned Value aliases b,
// which is only valid inside the transaction that produced b.
func decodeRecord(b []byte, copyValue bool) (record, error) {
	if len(b) < recordHeader || b[0] != recordVersion {
		return record{}, fmt.Errorf("%w: record header", ErrCorrupt)
	}
	ctLen := int(binary.BigEndian.Uint16(b[33:]))
	if len(b) < recordHeader+ctLen {
		return record{}, fmt.Errorf("%w: record content type", ErrCorrupt)
	}
	r := record{
		CreateRevision: binary.BigEndian.Uint64(b[1:]),
		ModRevision:    binary.BigEndian.Uint64(b[9:]),
		Version:        binary.BigEndian.Uint64(b[17:]),
		ExpiresAt:      int64(binary.BigEndian.Uint64(b[25:])),
		ContentType:    string(b[recordHeader : recordHeader+ctLen]),
		Value:          b[recordHeader+ctLen:],
	}
	if copyValue {
		r.Value = append([]byte(nil), r.Value...)
	}
	return r, nil
}

func (r *record) expired(now int64) bool {
	return r.ExpiresAt != 0 && r.ExpiresAt <= now
}

func ttlIndexKey(expiresAt int64, key string) []byte {
	k := make([]byte, 8+len(key))
	binary.BigEndian.PutUint64(k, uint64(expiresAt))
	copy(k[8:], key)
	return k
}

func u64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func u64bytes(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}
