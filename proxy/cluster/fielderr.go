package cluster

import "github.com/fedicache/fedicache/origin/fielderr"

// badField is the error of Validate for a bad value of field in the config type typ
// ("PeersConfig"), which the command reports under the field's key.
func badField(typ, field, value, problem, fix, example string) error {
	return &fielderr.Error{Pkg: "cluster", Field: typ + "." + field, Value: value,
		Problem: problem, Fix: fix, Example: example}
}
