package persist

import "syscall"

// fallocate allocates size bytes to the file (its size becomes size).
func fallocate(fd uintptr, size int64) error { return syscall.Fallocate(int(fd), 0, 0, size) }
