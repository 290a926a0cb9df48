package perm

import (
	"bytes"
	_ "embed"
	"sync"
)

// defaultJSON is the packaged default model, the reference's.
//
//go:embed default-permissions-model.json
var defaultJSON []byte

// DefaultJSON returns a copy of the packaged default model file, for tools
// that write it out as a starting point for a custom model.
func DefaultJSON() []byte { return bytes.Clone(defaultJSON) }

var defaultModel = sync.OnceValue(func() *Model {
	m, err := Load(bytes.NewReader(defaultJSON))
	if err != nil {
		// A programmer error caught by TestDefaultLoads, not bad input.
		panic("perm: packaged default model is invalid: " + err.Error())
	}
	return m
})

// Default returns the packaged default permission model (the reference's).
// Every call returns the same *Model; it is immutable and safe for
// concurrent use.
func Default() *Model { return defaultModel() }
