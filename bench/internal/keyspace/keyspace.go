// Package keyspace generates the benchmark's keys and values
// deterministically from a sequence number, so that a later phase can
// read back exactly the keys an earlier phase wrote and verify their
// values without keeping them in memory.
package keyspace

import "encoding/binary"

// KeySize is the length of every generated key, in bytes.
const KeySize = 16

// mix is the SplitMix64 finalizer, a bijection on uint64: distinct
// inputs give distinct, well-scattered outputs.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

const hexDigits = "0123456789abcdef"

// Space is a family of keys and values; different seeds give different,
// independent key sequences.
type Space struct {
	seed uint64
}

// New returns a key space for seed.
func New(seed uint64) Space { return Space{seed: seed} }

// Key writes the 16-character lowercase hex key of sequence number i into
// dst, which must hold at least KeySize bytes, and returns dst[:KeySize].
// Distinct i give distinct keys; keys look random, so inserts are not in
// key order.
func (s Space) Key(dst []byte, i uint64) []byte {
	v := mix(i ^ s.seed)
	dst = dst[:KeySize]
	for j := KeySize - 1; j >= 0; j-- {
		dst[j] = hexDigits[v&0xf]
		v >>= 4
	}
	return dst
}

// Value fills dst with the pseudo-random value of sequence number i.
// Values are incompressible and differ from key to key.
func (s Space) Value(dst []byte, i uint64) {
	state := mix(^i ^ s.seed)
	var word [8]byte
	for off := 0; off < len(dst); off += 8 {
		state = mix(state)
		binary.LittleEndian.PutUint64(word[:], state)
		copy(dst[off:], word[:])
	}
}

// Pick maps an arbitrary sequence number n onto [0, limit) in a
// scattered way; it is used to choose which existing key to read.
// limit must be positive.
func Pick(n, limit uint64) uint64 {
	return mix(n+0x632be59bd9b4e019) % limit
}
