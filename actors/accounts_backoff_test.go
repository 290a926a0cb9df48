package actors

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/authnzerver/authnzerver/passhash"
)

// A verification that failed because of the hasher is an error answered by
// status, never a wrong password (which would count as a failure); a stored
// hash this server cannot verify never matches.
func TestVerifyFault(t *testing.T) {
	tests := []struct {
		err       error
		wantFault bool
	}{
		{nil, false},
		{fmt.Errorf("parse: %w", passhash.ErrPHCMalformed), false},
		{fmt.Errorf("parse: %w", passhash.ErrPHCOutOfBounds), false},
		{fmt.Errorf("parse: %w", passhash.ErrPHCUnsupported), false},
		{fmt.Errorf("%w: broken pipe", passhash.ErrHashProcess), true},
		{passhash.ErrHasherTimeout, true},
		{passhash.ErrHasherStopped, true},
		{errors.New("passhash: hasher op panicked: boom"), true},
	}
	for _, tt := range tests {
		got := verifyFault(tt.err)
		if (got != nil) != tt.wantFault {
			t.Errorf("verifyFault(%v) = %v; want a fault: %v", tt.err, got, tt.wantFault)
		}
		if got != nil && !errors.Is(got, tt.err) {
			t.Errorf("verifyFault(%v) = %v; does not wrap the cause", tt.err, got)
		}
	}
}

func TestProtectedWindowGrowsToLockTime(t *testing.T) {
	tests := []struct {
		k        int
		lockTime time.Duration
		want     time.Duration
	}{
		{0, time.Hour, 40 * time.Second},
		{1, time.Hour, 40 * time.Second},
		{2, time.Hour, 80 * time.Second},
		{3, time.Hour, 160 * time.Second},
		{7, time.Hour, 2560 * time.Second},
		{8, time.Hour, time.Hour},
		{1000, time.Hour, time.Hour}, // no overflow
		{1, 10 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		if got := protectedWindow(tt.k, tt.lockTime); got != tt.want {
			t.Errorf("protectedWindow(%d, %v) = %v; want %v", tt.k, tt.lockTime, got, tt.want)
		}
	}
}
