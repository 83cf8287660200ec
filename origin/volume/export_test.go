package volume

// SetRootOnly sets whether volumes opened from now on resolve keys with os.Root alone, even
// where openat2 is available, and returns the previous setting.
func SetRootOnly(on bool) bool { return rootOnly.Swap(on) }

// UsesOpenat2 reports whether v resolves keys with one openat2 call.
func UsesOpenat2(v *Volume) bool { return v.beneath != nil }

// WalkHeld is how many directories a goroutine of a walk holds open on its path.
const WalkHeld = walkHeld
