package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt's on-disk format (version 2), as far as checkPages reads it. bbolt
// writes integers in the machine's byte order: little-endian on every
// platform kvstore is built for (amd64, arm64).
const (
	boltMagic          = 0xED0CDAED
	boltVersion        = 2
	pageHeaderSize     = 16 // id u64, flags u16, count u16, overflow u32
	pageElementSize    = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	bucketHeaderSize   = 16 // root pgid u64, sequence u64
	branchPageFlag     = 0x01
	leafPageFlag       = 0x02
	bucketLeafFlag     = 0x01
	noFreelist         = ^uint64(0)
	maxPagesPerVisit   = 1 << 20 // a page with more overflow than this is refused (4 GiB at 4 KiB pages)
	freelistPageFlag   = 0x10
	freelistCountLarge = 0xFFFF
)

var le = binary.LittleEndian

// checkPages walks the B+tree of the bbolt file f (size bytes) from the
// meta page bbolt would use, reading pages with ReadAt rather than through
// a mapping, and refuses a page reference out of the file, to a page
// already seen (a cycle or a shared page), to a page whose header names
// another page or is neither branch nor leaf, and elements that point
// outside their page. Once it passes, bbolt's own traversals (cursors,
// Tx.Check, the free-page scan at open) terminate and stay inside the file,
// so they cannot fault or loop on it.
func checkPages(f *os.File, size int64) error {
	m, err := readMeta(f)
	if err != nil {
		return err
	}
	if need := int64(m.hwm) * m.pageSize; need > size {
		return fmt.Errorf("%w: the file is %d bytes but its pages need %d: truncated", ErrCorrupt, size, need)
	}
	w := pageWalker{f: f, ps: m.pageSize, hwm: m.hwm, seen: map[uint64]bool{0: true, 1: true}}
	if err := w.page(m.root); err != nil {
		return err
	}
	if m.freelist != noFreelist {
		b, err := w.read(m.freelist, freelistPageFlag)
		if err != nil {
			return fmt.Errorf("freelist: %w", err)
		}
		n, off := uint64(le.Uint16(b[10:])), uint64(pageHeaderSize)
		if n == freelistCountLarge {
			if len(b) < pageHeaderSize+8 {
				return fmt.Errorf("%w: freelist page %d too short", ErrCorrupt, m.freelist)
			}
			n, off = le.Uint64(b[pageHeaderSize:]), off+8
		}
		if n > uint64(len(b)) || off+n*8 > uint64(len(b)) {
			return fmt.Errorf("%w: freelist page %d holds %d ids, more than fit", ErrCorrupt, m.freelist, n)
		}
	}
	return nil
}

type boltMeta struct {
	pageSize            int64
	root, freelist, hwm uint64
	txid                uint64
}

// readMeta returns the meta page bbolt would use: of the two valid ones
// the one with the higher transaction id.
func readMeta(f *os.File) (boltMeta, error) {
	parse := func(b []byte) (boltMeta, bool) {
		if len(b) < pageHeaderSize+64 {
			return boltMeta{}, false
		}
		m := b[pageHeaderSize:]
		h := fnv.New64a()
		h.Write(m[:56])
		if le.Uint32(m) != boltMagic || le.Uint32(m[4:]) != boltVersion || le.Uint64(m[56:]) != h.Sum64() {
			return boltMeta{}, false
		}
		return boltMeta{pageSize: int64(le.Uint32(m[8:])), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
			hwm: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
	}
	buf := make([]byte, pageHeaderSize+64)
	n, _ := f.ReadAt(buf, 0)
	m0, ok0 := parse(buf[:n])
	ps := int64(os.Getpagesize())
	if ok0 {
		ps = m0.pageSize
	}
	if ps < 1024 || ps > 64<<10 || ps&(ps-1) != 0 {
		return boltMeta{}, fmt.Errorf("%w: not a bbolt database (page size %d)", ErrCorrupt, ps)
	}
	n, _ = f.ReadAt(buf, ps)
	m1, ok1 := parse(buf[:n])
	if ok1 && m1.pageSize != ps {
		ok1 = false
	}
	switch {
	case ok0 && (!ok1 || m0.txid >= m1.txid):
		return m0, nil
	case ok1:
		return m1, nil
	}
	return boltMeta{}, fmt.Errorf("%w: not a bbolt database (no valid meta page)", ErrCorrupt)
}

type pageWalker struct {
	f    *os.File
	ps   int64
	hwm  uint64
	seen map[uint64]bool
}

// read returns page id and its overflow pages, checking its header.
func (w *pageWalker) read(id uint64, flags uint16) ([]byte, error) {
	if id < 2 || id >= w.hwm {
		return nil, fmt.Errorf("%w: page %d is outside the file's %d pages", ErrCorrupt, id, w.hwm)
	}
	hdr := make([]byte, pageHeaderSize)
	if _, err := w.f.ReadAt(hdr, int64(id)*w.ps); err != nil {
		return nil, fmt.Errorf("%w: page %d: %v", ErrCorrupt, id, err)
	}
	overflow := uint64(le.Uint32(hdr[12:]))
	switch {
	case le.Uint64(hdr) != id:
		return nil, fmt.Errorf("%w: page %d's header names page %d", ErrCorrupt, id, le.Uint64(hdr))
	case le.Uint16(hdr[8:])&flags == 0:
		return nil, fmt.Errorf("%w: page %d has type %#x, want %#x", ErrCorrupt, id, le.Uint16(hdr[8:]), flags)
	case overflow >= maxPagesPerVisit || id+overflow >= w.hwm:
		return nil, fmt.Errorf("%w: page %d overflows the file (%d more pages)", ErrCorrupt, id, overflow)
	}
	for i := id; i <= id+overflow; i++ {
		if w.seen[i] {
			return nil, fmt.Errorf("%w: page %d is referenced twice", ErrCorrupt, i)
		}
		w.seen[i] = true
	}
	b := make([]byte, int64(overflow+1)*w.ps)
	if _, err := w.f.ReadAt(b, int64(id)*w.ps); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%w: page %d: %v", ErrCorrupt, id, err)
	}
	return b, nil
}

// page checks the branch or leaf page id and everything below it.
func (w *pageWalker) page(id uint64) error {
	b, err := w.read(id, branchPageFlag|leafPageFlag)
	if err != nil {
		return err
	}
	return w.elements(id, b)
}

// elements checks the elements of page b (a page read from the file, or an
// inline bucket's page) and descends into its children.
func (w *pageWalker) elements(id uint64, b []byte) error {
	flags, count := le.Uint16(b[8:]), int(le.Uint16(b[10:]))
	if pageHeaderSize+count*pageElementSize > len(b) {
		return fmt.Errorf("%w: page %d: %d elements do not fit", ErrCorrupt, id, count)
	}
	switch {
	case flags&branchPageFlag != 0:
		if count == 0 {
			return fmt.Errorf("%w: branch page %d is empty", ErrCorrupt, id)
		}
		for i := range count {
			e := b[pageHeaderSize+i*pageElementSize:]
			if end := uint64(pageHeaderSize+i*pageElementSize) + uint64(le.Uint32(e)) + uint64(le.Uint32(e[4:])); end > uint64(len(b)) {
				return fmt.Errorf("%w: page %d: element %d points outside the page", ErrCorrupt, id, i)
			}
			if err := w.page(le.Uint64(e[8:])); err != nil {
				return err
			}
		}
	case flags&leafPageFlag != 0:
		for i := range count {
			off := uint64(pageHeaderSize + i*pageElementSize)
			e := b[off:]
			kstart := off + uint64(le.Uint32(e[4:]))
			vstart := kstart + uint64(le.Uint32(e[8:]))
			vend := vstart + uint64(le.Uint32(e[12:]))
			if vend > uint64(len(b)) {
				return fmt.Errorf("%w: page %d: element %d points outside the page", ErrCorrupt, id, i)
			}
			if le.Uint32(e)&bucketLeafFlag == 0 {
				continue
			}
			v := b[vstart:vend]
			if len(v) < bucketHeaderSize {
				return fmt.Errorf("%w: page %d: bucket %d has a short header", ErrCorrupt, id, i)
			}
			if root := le.Uint64(v); root != 0 {
				if err := w.page(root); err != nil {
					return err
				}
				continue
			}
			inline := v[bucketHeaderSize:]
			if len(inline) < pageHeaderSize || le.Uint16(inline[8:])&leafPageFlag == 0 {
				return fmt.Errorf("%w: page %d: inline bucket %d is not a leaf page", ErrCorrupt, id, i)
			}
			if err := w.elements(id, inline); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%w: page %d has type %#x, want a branch or leaf", ErrCorrupt, id, flags)
	}
	return nil
}
