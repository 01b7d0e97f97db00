package afxdp

import (
	"sync/atomic"
	"unsafe"
)

// desc is struct xdp_desc: a frame of the UMEM, by offset and length, on an
// RX or TX ring.
type desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}

// ring is the index half of an AF_XDP ring shared with the kernel: a
// producer and a consumer index that only grow (the slot is index&mask),
// and the flags word where the kernel asks for a wake-up. Each side caches
// the other's index and reads it again only when the cache says the ring is
// full (producer) or empty (consumer), so that a batch costs two atomic
// operations, not two per entry.
type ring struct {
	producer *uint32
	consumer *uint32
	flags    *uint32
	mask     uint32
	size     uint32
	// cachedProd is the producer index: our own when we produce, the
	// kernel's last one read when we consume. cachedCons likewise.
	cachedProd uint32
	cachedCons uint32
}

func newRing(producer, consumer, flags *uint32, size uint32) ring {
	return ring{producer: producer, consumer: consumer, flags: flags, mask: size - 1, size: size,
		cachedProd: atomic.LoadUint32(producer), cachedCons: atomic.LoadUint32(consumer)}
}

// needWakeup reports whether the kernel set XDP_RING_NEED_WAKEUP.
func (r *ring) needWakeup() bool {
	return r.flags != nil && atomic.LoadUint32(r.flags)&ringNeedWakeup != 0
}

const ringNeedWakeup = 1 // XDP_RING_NEED_WAKEUP

// free returns how many entries up to n the producer can write now.
func (r *ring) free(n uint32) uint32 {
	f := r.size - (r.cachedProd - r.cachedCons)
	if f >= n {
		return n
	}
	r.cachedCons = atomic.LoadUint32(r.consumer)
	f = r.size - (r.cachedProd - r.cachedCons)
	return min(f, n)
}

// reserve returns the index of the first of n entries the producer may
// write (n from free).
func (r *ring) reserve(n uint32) uint32 {
	i := r.cachedProd
	r.cachedProd += n
	return i
}

// submit publishes the reserved entries to the kernel.
func (r *ring) submit() { atomic.StoreUint32(r.producer, r.cachedProd) }

// avail returns how many entries up to n the consumer can read now, from
// index cachedCons on.
func (r *ring) avail(n uint32) uint32 {
	a := r.cachedProd - r.cachedCons
	if a == 0 {
		r.cachedProd = atomic.LoadUint32(r.producer)
		a = r.cachedProd - r.cachedCons
	}
	return min(a, n)
}

// release hands n read entries back to the kernel.
func (r *ring) release(n uint32) {
	r.cachedCons += n
	atomic.StoreUint32(r.consumer, r.cachedCons)
}

// addrRing is a fill or completion ring: UMEM frame addresses.
type addrRing struct {
	ring
	addrs []uint64
}

func (r *addrRing) at(i uint32) *uint64 { return &r.addrs[i&r.mask] }

// descRing is an RX or TX ring: frame descriptors.
type descRing struct {
	ring
	descs []desc
}

func (r *descRing) at(i uint32) *desc { return &r.descs[i&r.mask] }

// ringMem lays the ring at off in mem out: the producer, consumer, flags
// and entry offsets come from the kernel (struct xdp_ring_offset).
func ringAt[T any](mem []byte, prod, cons, flags, descOff uint64, size uint32) (ring, []T) {
	p := (*uint32)(unsafe.Pointer(&mem[prod]))
	c := (*uint32)(unsafe.Pointer(&mem[cons]))
	var f *uint32
	if flags != 0 {
		f = (*uint32)(unsafe.Pointer(&mem[flags]))
	}
	return newRing(p, c, f, size), unsafe.Slice((*T)(unsafe.Pointer(&mem[descOff])), size)
}
