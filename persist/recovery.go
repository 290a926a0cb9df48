package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// WALDamageError is returned by [Open] when the write-ahead log is damaged
// before its end: records that were written and synced after the damage
// exist, so this is not the torn tail a crash leaves (which is replayed up
// to the tear), and opening would silently lose acknowledged writes.
type WALDamageError struct {
	File        string // the damaged log
	Offset      int64  // where the first unreadable record starts
	Size        int64  // the log's size
	LostRecords int    // intact records after the damage (each one commit)
	LostWrites  int    // keys set or deleted by them
}

func (e *WALDamageError) Error() string {
	return fmt.Sprintf("persist: write-ahead log %s is damaged at byte %d of %d: %d intact commits after it (%d writes) cannot be replayed",
		e.File, e.Offset, e.Size, e.LostRecords, e.LostWrites)
}

// DamagedStoreError is returned when a store file cannot be read (a
// checksum mismatch, a truncated table): the data must come from a backup.
type DamagedStoreError struct {
	File string // the damaged file; "" when pebble's error names it
	Dir  string // the store directory
	Err  error
}

func (e *DamagedStoreError) Error() string {
	what := "store file " + e.File
	if e.File == "" {
		what = "the store in " + e.Dir
	}
	return fmt.Sprintf("persist: %s is damaged (%s): restore the data directory from a backup", what, firstLine(e.Err.Error()))
}
func (e *DamagedStoreError) Unwrap() error { return e.Err }

// damaged turns a corruption error pebble reported while reading into a
// DamagedStoreError naming the file.
func (s *Store) damaged(err error) error {
	if !pebble.IsCorruptionError(err) && !errors.Is(err, pebble.ErrCorruption) {
		return err
	}
	var file string
	if p := s.events.damagedFile.Load(); p != nil {
		file = *p
	}
	return &DamagedStoreError{File: file, Dir: s.dir, Err: err}
}

// openRecovering opens the store. Its write-ahead logs are read first: a
// log damaged before its end is reported, and refused unless skip; with
// skip it is copied aside and cut at the damage, so pebble replays what
// precedes it. (pebble itself only notices damage that a later 32 KiB block
// proves, and otherwise replays up to the damage and drops the rest
// silently.)
func openRecovering(dir string, popts *pebble.Options, skip bool, lg *slog.Logger) (*pebble.DB, error) {
	for tries := 0; ; tries++ {
		dmg, err := findWALDamage(popts.FS, dir)
		if err != nil {
			return nil, fmt.Errorf("persist: read the write-ahead logs of %s: %w", dir, err)
		}
		if dmg == nil {
			break
		}
		lg.Error("store: write-ahead log damaged before its end; the commits after the damage cannot be replayed",
			"file", dmg.File, "offset", dmg.Offset, "size", dmg.Size, "lost_commits", dmg.LostRecords, "lost_writes", dmg.LostWrites)
		if !skip {
			return nil, dmg
		}
		if tries >= 16 {
			return nil, fmt.Errorf("persist: %w (still damaged after cutting it %d times)", dmg, tries)
		}
		aside, err := setAside(popts.FS, dir, dmg)
		if err != nil {
			return nil, fmt.Errorf("persist: set damaged log aside: %w", err)
		}
		lg.Error("store: starting without the commits after the damage; the damaged log is kept",
			"file", dmg.File, "copy", aside, "lost_commits", dmg.LostRecords, "lost_writes", dmg.LostWrites)
	}
	db, err := openDB(dir, popts)
	if err == nil {
		return db, nil
	}
	if pebble.IsCorruptionError(err) || errors.Is(err, pebble.ErrCorruption) {
		return nil, &DamagedStoreError{Dir: dir, Err: err}
	}
	return nil, fmt.Errorf("persist: open %s: %w", dir, err)
}

// openDB is pebble.Open with pebble's fatal errors (Logger.Fatalf panics)
// turned into errors.
func openDB(dir string, popts *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, panicError(r)
		}
	}()
	return pebble.Open(dir, popts)
}

// findWALDamage reads the write-ahead logs in dir, oldest first, and
// returns the first one that cannot be read to its end although synced
// records follow the unreadable part (nil if none).
func findWALDamage(fs vfs.FS, dir string) (*WALDamageError, error) {
	names, err := fs.List(dir)
	if err != nil {
		return nil, err
	}
	type wal struct {
		name string
		num  uint64
	}
	var wals []wal
	for _, n := range names {
		if num, ok := strings.CutSuffix(n, ".log"); ok {
			if v, err := strconv.ParseUint(num, 10, 64); err == nil {
				wals = append(wals, wal{n, v})
			}
		}
	}
	slices.SortFunc(wals, func(a, b wal) int { return int(a.num) - int(b.num) })
	for _, w := range wals {
		dmg, err := walDamage(fs, fs.PathJoin(dir, w.name), w.num)
		if err != nil || dmg != nil {
			return dmg, err
		}
	}
	return nil, nil
}

// newWALReader is record.NewReader for a log number held in a uint64
// (record takes pebble's internal file-number type).
func newWALReader[N ~uint64](newReader func(io.Reader, N) *record.Reader, r io.Reader, num uint64) *record.Reader {
	return newReader(r, N(num))
}

// walDamage reads one log with pebble's reader up to the first record it
// cannot read. That is damage, not a torn tail, when an intact chunk after
// it says that the log had been synced past it: a crash can only tear what
// was not synced yet.
func walDamage(fs vfs.FS, path string, num uint64) (*WALDamageError, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	r := newWALReader(record.NewReader, io.Reader(f), num)
	for {
		off := r.Offset()
		rec, err := r.Next()
		if err == nil {
			_, err = io.Copy(io.Discard, rec)
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, io.EOF):
			return nil, nil
		case errors.Is(err, record.ErrUnexpectedEOF), errors.Is(err, record.ErrInvalidChunk), errors.Is(err, record.ErrZeroedChunk):
			dmg := &WALDamageError{File: path, Offset: off, Size: st.Size()}
			confirmed, err := countAfter(fs, path, num, dmg)
			if err != nil {
				return nil, err
			}
			if !confirmed {
				return nil, nil // a torn tail: replayed up to the tear
			}
			return dmg, nil
		default:
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
	}
}

// Chunk layout of pebble's log (record/record.go): 32 KiB blocks of
// chunks, each a header (checksum 4, length 2, encoding 1, then the log
// number 4 in the recyclable and sync formats, then a synced offset 8 in
// the sync format) and its payload.
const (
	walBlockSize = 32 << 10
	legacyHeader = 7
)

// countAfter counts the intact records (first or full chunks whose
// checksum matches and that belong to this log) after the damage, and the
// writes in them (the count in each commit's 12-byte header). confirmed is
// true when one of them says the log was synced past the damage.
func countAfter(fs vfs.FS, path string, num uint64, dmg *WALDamageError) (confirmed bool, err error) {
	f, err := fs.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		return false, err
	}
	table := crc32.MakeTable(crc32.Castagnoli)
	// Skip the damaged record's own chunk: start after its header.
	for pos := dmg.Offset + 1; pos+legacyHeader <= int64(len(b)); {
		blockEnd := (pos/walBlockSize + 1) * walBlockSize
		// pebble writes only the recyclable and sync formats; both name
		// the log, which keeps this scan from computing checksums of
		// garbage at every byte.
		enc := b[pos+6]
		hdr, first := 0, false
		switch {
		case enc >= 5 && enc <= 8:
			hdr, first = legacyHeader+4, enc <= 6
		case enc >= 9 && enc <= 12:
			hdr, first = legacyHeader+12, enc <= 10
		}
		length := int64(binary.LittleEndian.Uint16(b[pos+4:]))
		end := pos + int64(hdr) + length
		ok := hdr > 0 && end <= blockEnd && end <= int64(len(b))
		if ok && uint64(binary.LittleEndian.Uint32(b[pos+7:])) != num&0xffffffff {
			ok = false
		}
		if ok {
			c := crc32.Checksum(b[pos+6:end], table)
			ok = uint32(c>>15|c<<17)+0xa282ead8 == binary.LittleEndian.Uint32(b[pos:])
		}
		if !ok {
			pos++ // resynchronise byte by byte: the damage may have shifted nothing
			continue
		}
		if hdr == legacyHeader+12 && binary.LittleEndian.Uint64(b[pos+11:]) > uint64(dmg.Offset) {
			confirmed = true
		}
		if first {
			dmg.LostRecords++
			if payload := b[pos+int64(hdr) : end]; len(payload) >= 12 {
				dmg.LostWrites += int(binary.LittleEndian.Uint32(payload[8:12]))
			}
		}
		pos = end
	}
	return confirmed, nil
}

// setAside copies the damaged log into a new directory beside the store and
// cuts the log at the damage, so that pebble replays what precedes it.
func setAside(fs vfs.FS, dir string, dmg *WALDamageError) (string, error) {
	asideDir := dir + ".damaged-" + time.Now().UTC().Format("20060102T150405.000Z")
	pfs := newPrivateFS(fs)
	if err := pfs.MkdirAll(asideDir, dirMode); err != nil {
		return "", err
	}
	copyPath := fs.PathJoin(asideDir, fs.PathBase(dmg.File))
	if err := copyPrefix(pfs, dmg.File, copyPath, dmg.Size); err != nil {
		return "", err
	}
	tmp := dmg.File + ".cut"
	if err := copyPrefix(pfs, dmg.File, tmp, dmg.Offset); err != nil {
		return "", err
	}
	if err := fs.Rename(tmp, dmg.File); err != nil {
		return "", err
	}
	d, err := fs.OpenDir(dir)
	if err != nil {
		return "", err
	}
	defer d.Close()
	return copyPath, d.Sync()
}

// copyPrefix copies the first n bytes of src to a new file dst and syncs it.
func copyPrefix(fs vfs.FS, src, dst string, n int64) error {
	in, err := fs.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := fs.Create(dst, vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, io.LimitReader(in, n)); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
