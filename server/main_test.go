package server_test

import (
	"testing"

	"github.com/authnzerver/authnzerver/pgstore/pgtest"
)

// TestMain stops the throwaway PostgreSQL the tests on that backend share
// (e2e_postgres_test.go).
func TestMain(m *testing.M) { pgtest.Main(m) }
