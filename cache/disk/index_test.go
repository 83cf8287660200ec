package disk

import (
	"container/list"
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestIndexAgainstList runs random operations on an index and on a container/list model and
// compares the recency order, the sizes and the byte count after each.
func TestIndexAgainstList(t *testing.T) {
	var x index
	x.init()
	model := list.New() // front: most recent; values are keys
	elems := map[string]*list.Element{}
	sizes := map[string]int64{}
	rnd := rand.New(rand.NewPCG(1, 2))
	for step := range 20_000 {
		key := fmt.Sprint(rnd.IntN(3 * chunkLen))
		size := rnd.Int64N(1000)
		switch op := rnd.IntN(5); {
		case op == 0 || op == 1:
			x.pushFront(key, size, 0)
			if e := elems[key]; e != nil {
				model.MoveToFront(e)
			} else {
				elems[key] = model.PushFront(key)
			}
			sizes[key] = size
		case op == 2:
			if elems[key] == nil {
				x.pushBack(key, size, 0)
				elems[key] = model.PushBack(key)
				sizes[key] = size
			}
		case op == 3:
			if n := x.get(key); n != nil {
				x.moveToFront(n)
				model.MoveToFront(elems[key])
			}
		case op == 4:
			if rnd.IntN(2) == 0 {
				if n := x.back(); n != nil {
					key = n.key
				}
			}
			if n := x.get(key); n != nil {
				x.remove(n)
				model.Remove(elems[key])
				delete(elems, key)
				delete(sizes, key)
			}
		}
		if step%97 == 0 || step == 19_999 {
			checkIndex(t, &x, model, sizes)
		}
	}
}

// checkIndex compares x with the model.
func checkIndex(t *testing.T, x *index, model *list.List, sizes map[string]int64) {
	t.Helper()
	if x.len() != model.Len() {
		t.Fatalf("index has %d entries, model %d", x.len(), model.Len())
	}
	var total int64
	i := x.at(0).next
	for e := model.Front(); e != nil; e = e.Next() {
		n := x.at(i)
		if n.key != e.Value.(string) || n.size != sizes[n.key] {
			t.Fatalf("index has %q (%d bytes) where the model has %q (%d)", n.key, n.size, e.Value, sizes[e.Value.(string)])
		}
		total += n.size
		i = n.next
	}
	if i != 0 {
		t.Fatal("the index's list is longer than the model's")
	}
	if total != x.bytes {
		t.Fatalf("index counts %d bytes, its entries hold %d", x.bytes, total)
	}
	if b := x.back(); (b == nil) != (model.Len() == 0) || (b != nil && b.key != model.Back().Value.(string)) {
		t.Fatal("back differs from the model's")
	}
}
