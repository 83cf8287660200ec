// Package seeded makes the benchmark's media bytes: pseudo-random (media does not compress),
// the same for the same seed, so that bench/gen can write them and bench/load can check them.
package seeded

import (
	"encoding/binary"
	"math/rand/v2"
)

// Bytes returns size pseudo-random bytes determined by seed.
func Bytes(seed uint64, size int64) []byte {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}
