package keyspace

import (
	"bytes"
	"testing"
)

func TestKeyUniqueAndPrintable(t *testing.T) {
	tests := []struct {
		name string
		seed uint64
		n    uint64
	}{
		{"seed 0", 0, 100000},
		{"seed 42", 42, 100000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.seed)
			seen := make(map[string]struct{}, tt.n)
			buf := make([]byte, KeySize)
			for i := uint64(0); i < tt.n; i++ {
				k := s.Key(buf, i)
				if len(k) != KeySize {
					t.Fatalf("len(Key(%d)) = %d", i, len(k))
				}
				for _, c := range k {
					if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
						t.Fatalf("Key(%d) = %q has non-hex byte", i, k)
					}
				}
				if _, dup := seen[string(k)]; dup {
					t.Fatalf("Key(%d) = %q repeats", i, k)
				}
				seen[string(k)] = struct{}{}
			}
		})
	}
}

func TestValueDeterministicAndDistinct(t *testing.T) {
	tests := []struct {
		name string
		size int
	}{
		{"256", 256},
		{"not a multiple of 8", 13},
		{"empty", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(7)
			a, b, c := make([]byte, tt.size), make([]byte, tt.size), make([]byte, tt.size)
			s.Value(a, 1)
			s.Value(b, 1)
			s.Value(c, 2)
			if !bytes.Equal(a, b) {
				t.Error("Value is not deterministic")
			}
			if tt.size >= 8 && bytes.Equal(a, c) {
				t.Error("values of different keys are equal")
			}
		})
	}
}

func TestPickInRange(t *testing.T) {
	tests := []struct{ limit uint64 }{{1}, {2}, {1000}, {1 << 40}}
	for _, tt := range tests {
		for n := uint64(0); n < 10000; n++ {
			if got := Pick(n, tt.limit); got >= tt.limit {
				t.Fatalf("Pick(%d, %d) = %d out of range", n, tt.limit, got)
			}
		}
	}
}
