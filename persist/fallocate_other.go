//go:build !linux

package persist

import "syscall"

// fallocate is Linux's; elsewhere the reserve is written with zeros.
func fallocate(uintptr, int64) error { return syscall.ENOSYS }
