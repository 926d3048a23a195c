package nn

// Arena hands out float32 tensors that stay valid until Reset or until the
// Release of a Mark taken before them. It reuses its buffers: a training step
// that asks for the same sequence of shapes on every call allocates tensor
// memory only on its first call (buffers grow to the largest size asked of
// each slot). The zero value is ready to use. An Arena is not safe for
// concurrent use; a nil *Arena allocates fresh tensors on every Get.
type Arena struct {
	slots []*Tensor
	next  int
	bytes int64
}

// Get returns a tensor of the given shape whose contents are undefined (the
// caller overwrites every element).
func (a *Arena) Get(shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic("nn: Arena.Get: negative dimension")
		}
		n *= d
	}
	if a == nil {
		return &Tensor{Shape: append([]int(nil), shape...), Data: make([]float32, n)}
	}
	if a.next == len(a.slots) {
		a.slots = append(a.slots, &Tensor{})
	}
	t := a.slots[a.next]
	a.next++
	if cap(t.Data) < n {
		a.bytes += int64(n-cap(t.Data)) * 4
		t.Data = make([]float32, n)
	}
	t.Data = t.Data[:n]
	t.Shape = append(t.Shape[:0], shape...)
	return t
}

// Zeros is Get followed by clearing the data.
func (a *Arena) Zeros(shape ...int) *Tensor {
	t := a.Get(shape...)
	if a != nil {
		clear(t.Data)
	}
	return t
}

// Mark returns a position to Release back to: tensors obtained after it are
// scratch space.
func (a *Arena) Mark() int {
	if a == nil {
		return 0
	}
	return a.next
}

// Release makes every tensor obtained since Mark returned m reusable.
func (a *Arena) Release(m int) {
	if a != nil && m <= a.next {
		a.next = m
	}
}

// Reset makes every tensor reusable.
func (a *Arena) Reset() {
	if a != nil {
		a.next = 0
	}
}

// Bytes is the memory the arena holds.
func (a *Arena) Bytes() int64 {
	if a == nil {
		return 0
	}
	return a.bytes
}
