package disk

import "github.com/fedicache/fedicache/cache"

// Spool implements cache.DiskTier: Create, as the cache's fills use it.
func (d *Disk) Spool(e cache.Entry) (cache.Spool, error) {
	w, err := d.Create(e)
	if err != nil {
		return nil, err
	}
	return w, nil
}

var _ cache.DiskTier = (*Disk)(nil)
