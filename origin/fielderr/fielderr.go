// Package fielderr owns the error a library returns for a bad value in its Config. The error
// names the Go field (Config.Bucket), never a configuration key: keys belong to the program that
// filled the Config, which finds the error with errors.As and names its own key for the field.
//
// It sits below origin, imports only the standard library, and so may be imported by every
// library of the module (origin/s3, the cache tiers, the state, the backfill).
package fielderr

import (
	"regexp"
	"strings"
)

// Error is a bad value in one field of a package's Config, or a missing one.
//
// Problem and Fix may name other fields of the same Config, written in braces ({Config.Prefix}):
// Error shows them by their Go names, Message as its caller names them.
type Error struct {
	// Pkg is the package whose Config has the field, as its callers name it: "s3", "disk".
	Pkg string
	// Field is the field at fault as Go names it inside Pkg: "Config.Bucket".
	Field string
	// Value is the bad value as the message shows it (`"media/files"`, "-1"); empty shows none.
	Value string
	// Problem says what is wrong with the value: "is empty", "is not a bucket name".
	Problem string
	// Fix says what to do: "set the bucket's name".
	Fix string
	// Example is a right value of the field ("mastodon-media"); empty when none fits.
	Example string
	// Err is the cause, when there is one (the directory could not be created).
	Err error
}

// Error returns "<Pkg>: <Field> [<Value>] <Problem>[: <Err>]: <Fix>[, e.g. <Example>]", e.g.
// `s3: Config.Bucket is empty: set the bucket's name, e.g. mastodon-media`.
func (e *Error) Error() string {
	msg := e.Pkg + ": " + e.Message(nil)
	if e.Example != "" {
		msg += ", e.g. " + e.Example
	}
	return msg
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Message returns the message without the package and the example:
// "<name(Field)> [<Value>] <Problem>[: <Err>]: <Fix>", with every field of Problem and Fix named
// by name too. A nil name keeps the Go names. A caller that names the field by a configuration
// key appends its own example, written as that key is written.
func (e *Error) Message(name func(field string) string) string {
	if name == nil {
		name = func(field string) string { return field }
	}
	var b strings.Builder
	b.WriteString(name(e.Field))
	if e.Value != "" {
		b.WriteString(" " + e.Value)
	}
	if e.Problem != "" {
		b.WriteString(" " + fill(e.Problem, name))
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	if e.Fix != "" {
		b.WriteString(": " + fill(e.Fix, name))
	}
	return b.String()
}

// Fields returns Field and every other field that Problem and Fix name, in that order.
func (e *Error) Fields() []string {
	out := []string{e.Field}
	for _, t := range []string{e.Problem, e.Fix} {
		for _, m := range fieldRef.FindAllStringSubmatch(t, -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// fieldRef is a field named in Problem or Fix: {Config.Prefix}.
var fieldRef = regexp.MustCompile(`\{([A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9]*)\}`)

// fill replaces every {Type.Field} of text with name(Type.Field).
func fill(text string, name func(string) string) string {
	return fieldRef.ReplaceAllStringFunc(text, func(ref string) string {
		return name(ref[1 : len(ref)-1])
	})
}
