package persist

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// File modes of everything the store creates: the store holds password
// hashes, sessions and API keys, so only the server's user may read it.
const (
	fileMode = 0o600
	dirMode  = 0o700
)

// privateFS makes every file pebble creates 0600 and every directory 0700,
// whatever the umask. pebble's OS filesystem creates files 0666 and
// checkpoint directories 0755 and leaves the rest to the umask, which gives
// 0644 under the usual umask of 022 (backups are checkpoints, so they go
// through here too).
type privateFS struct {
	vfs.FS
	// onDisk is true when the names are OS paths (the wrapped filesystem is
	// the OS's, perhaps under a fault-injecting wrapper), so files that give
	// no descriptor can be chmod-ed by name. An in-memory test filesystem
	// has no modes to fix.
	onDisk bool
}

func newPrivateFS(base vfs.FS) privateFS {
	return privateFS{FS: base, onDisk: vfs.Root(base) == vfs.Default}
}

func (p privateFS) Unwrap() vfs.FS { return p.FS }

func (p privateFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.Create(name, cat)
	if err != nil {
		return nil, err
	}
	return p.private(name, f)
}

func (p privateFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := p.FS.OpenReadWrite(name, cat, opts...)
	if err != nil {
		return nil, err
	}
	return p.private(name, f)
}

func (p privateFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := p.FS.ReuseForWrite(oldname, newname, cat)
	if err != nil {
		return nil, err
	}
	return p.private(newname, f)
}

func (p privateFS) MkdirAll(dir string, _ os.FileMode) error {
	if err := p.FS.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	if p.onDisk {
		// MkdirAll leaves an existing directory as it is; pebble only
		// makes directories of its own (the store, a checkpoint).
		return chmodPath(dir, dirMode)
	}
	return nil
}

// Lock creates the LOCK file with os.Create (0666 less the umask).
func (p privateFS) Lock(name string) (io.Closer, error) {
	c, err := p.FS.Lock(name)
	if err != nil {
		return nil, err
	}
	if p.onDisk {
		if err := chmodPath(name, fileMode); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// private sets f's mode to 0600 through its descriptor (no window in which
// another name points at a readable file), or by name when it has none.
func (p privateFS) private(name string, f vfs.File) (vfs.File, error) {
	var err error
	if fd := f.Fd(); fd != vfs.InvalidFd {
		err = syscall.Fchmod(int(fd), fileMode)
	} else if p.onDisk {
		err = chmodPath(name, fileMode)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("persist: make %s private: %w", name, err)
	}
	return f, nil
}

func chmodPath(name string, mode os.FileMode) error {
	if err := os.Chmod(name, mode); err != nil {
		return fmt.Errorf("persist: make %s private: %w", name, err)
	}
	return nil
}

// tightenModes makes the files and directories of an existing store dir
// private, for stores created before files were made 0600.
func tightenModes(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		want := os.FileMode(fileMode)
		if d.IsDir() {
			want = dirMode
		} else if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode().Perm()&^want != 0 {
			return chmodPath(path, want)
		}
		return nil
	})
}
