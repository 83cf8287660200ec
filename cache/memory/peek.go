package memory

import "github.com/fedicache/fedicache/cache"

// Peek returns key's entry for the hot path of a memory hit, without allocating: the Hit
// points into the stored item (its Body and Entry are shared and must not be modified) and
// carries what the HTTP front needs precomputed (Last-Modified as an HTTP date). The stored
// Entry's ValidatedAt is zero; the live value is Hit.ValidatedAt. A Peek counts as an access
// for the admission policy, as Open does.
func (m *Memory) Peek(key string) (cache.Hit, bool) {
	it, ok := m.c.Get(key)
	if !ok || it == nil {
		return cache.Hit{}, false
	}
	return cache.Hit{
		Body:         it.body,
		Entry:        &it.entry,
		LastModified: it.lastModified,
		ValidatedAt:  it.validated(),
		Allowed:      &it.allowed,
	}, true
}
