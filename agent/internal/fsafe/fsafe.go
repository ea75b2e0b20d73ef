// Package fsafe is how root touches the file system on a host: never through a symbolic link,
// and never inside a directory a less-trusted user could write, where a name root is about to
// open could be swapped for a link to any root file between root's check and its open.
//
// Directories are checked once (CheckTrusted, EnsureDir); names inside a checked directory
// are then opened relative to a descriptor of it with openat2's RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS, so neither a link nor `..` in a name can lead out of it.
package fsafe

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// RootUID is the owner every trusted directory must have: 0 on a host. Tests running
// unprivileged set it to their own uid.
var RootUID = 0

// top is where CheckTrusted stops climbing (it checks top itself). Always "/" outside this
// package's tests, whose temp directories sit under a world-writable /tmp.
var top = "/"

const trustTail = "the deploy needs it and every directory above it to be root's, not a symbolic link and writable by root only"

func ownerName(uid uint32) string {
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil && u.Username != "" {
		return u.Username
	}
	return strconv.FormatUint(uint64(uid), 10)
}

// CheckTrusted refuses path unless it and every directory above it are directories owned by
// RootUID, not links, and writable by their owner only. A sticky world-writable directory
// (/tmp) is refused too: the sticky bit stops others removing root's names, not creating
// their own where root is about to create one.
func CheckTrusted(path string) error {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return fmt.Errorf("%s is not an absolute, normalized path: the deploy only uses those", path)
	}
	for p := path; ; p = filepath.Dir(p) {
		if err := checkOne(p); err != nil {
			return err
		}
		if p == top || p == "/" {
			return nil
		}
	}
}

func checkOne(p string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	fix := fmt.Sprintf("(fix: chown root:root %s && chmod go-w %s, or choose another baseDir)", p, p)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return fmt.Errorf("%s is a symbolic link: %s (fix: replace the link by a directory of root's, or choose another baseDir)", p, trustTail)
	case unix.S_IFDIR:
	default:
		return fmt.Errorf("%s is not a directory (mode %s): %s (fix: replace it by a directory of root's, or choose another baseDir)", p, os.FileMode(st.Mode&0o777).String(), trustTail)
	}
	if int(st.Uid) != RootUID || st.Mode&0o022 != 0 {
		return fmt.Errorf("%s is owned by %s (uid %d) with mode %04o: %s %s", p, ownerName(st.Uid), st.Uid, st.Mode&0o7777, trustTail, fix)
	}
	return nil
}

// EnsureDir creates what is missing of path (each new directory mode, owned by RootUID) and
// then checks it is trusted. The deepest existing ancestor is checked before anything is
// created, so nothing is created under a directory someone else could change meanwhile.
func EnsureDir(path string, mode os.FileMode) (created bool, err error) {
	if !filepath.IsAbs(path) || filepath.Clean(path) != path {
		return false, fmt.Errorf("%s is not an absolute, normalized path: the deploy only uses those", path)
	}
	var missing []string
	p := path
	for {
		_, err := os.Lstat(p)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return false, err
		}
		missing = append(missing, p)
		if p == "/" {
			break
		}
		p = filepath.Dir(p)
	}
	if len(missing) > 0 {
		if err := CheckTrusted(p); err != nil {
			return false, err
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := unix.Mkdir(d, uint32(mode.Perm())); err != nil {
			if errors.Is(err, unix.EEXIST) {
				continue // made meanwhile by another root process: CheckTrusted judges it
			}
			return created, &os.PathError{Op: "mkdir", Path: d, Err: err}
		}
		created = true
		// The umask must not decide the mode; the parent is trusted, so nothing else can have
		// replaced d by a link since mkdir (and Lchown/chmod via a checked open never follow one).
		if err := fixNew(d, mode); err != nil {
			return created, err
		}
	}
	return created, CheckTrusted(path)
}

func fixNew(d string, mode os.FileMode) error {
	fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: d, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, RootUID, -1); err != nil {
		return &os.PathError{Op: "chown", Path: d, Err: err}
	}
	if err := unix.Fchmod(fd, sysMode(mode)); err != nil {
		return &os.PathError{Op: "chmod", Path: d, Err: err}
	}
	return nil
}

func sysMode(m os.FileMode) uint32 {
	s := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		s |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		s |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		s |= unix.S_ISVTX
	}
	return s
}

const resolve = unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS

// openat2 is not on every kernel this may run on (before 5.6): then names are single
// components opened with O_NOFOLLOW, which gives the same guarantee for them.
var noOpenat2 atomic.Bool

func retry[T any](f func() (T, error)) (T, error) {
	for {
		v, err := f()
		// EAGAIN: RESOLVE_BENEATH saw a concurrent rename and asks for a retry.
		if !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EAGAIN) {
			return v, err
		}
	}
}

func singleComponent(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return fmt.Errorf("%q is not a single file name", name)
	}
	return nil
}

// openAt opens name beneath the directory dirfd refers to, never through a link.
func openAt(dirfd int, name string, flags int, mode uint32) (int, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return -1, unix.EINVAL
	}
	if !noOpenat2.Load() {
		how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW), Mode: uint64(mode), Resolve: resolve}
		if flags&unix.O_CREAT == 0 && flags&unix.O_TMPFILE != unix.O_TMPFILE {
			how.Mode = 0 // openat2 refuses a mode without O_CREAT
		}
		fd, err := retry(func() (int, error) { return unix.Openat2(dirfd, name, &how) })
		if !errors.Is(err, unix.ENOSYS) {
			return fd, err
		}
		noOpenat2.Store(true)
	}
	if err := singleComponent(name); err != nil {
		return -1, unix.EXDEV
	}
	return retry(func() (int, error) { return unix.Openat(dirfd, name, flags|unix.O_CLOEXEC|unix.O_NOFOLLOW, mode) })
}

func openDir(dir string, flags int) (int, error) {
	fd, err := retry(func() (int, error) {
		return unix.Open(dir, flags|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// OpenBeneath opens name inside dir: neither dir's last component nor any component of name
// may be a link, and name cannot leave dir (`..`, an absolute name). flags are open(2)'s.
func OpenBeneath(dir, name string, flags int, mode uint32) (*os.File, error) {
	dfd, err := openDir(dir, unix.O_PATH)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	fd, err := openAt(dfd, name, flags, mode)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: filepath.Join(dir, name), Err: err}
	}
	return os.NewFile(uintptr(fd), filepath.Join(dir, name)), nil
}

// ReadFile reads the regular file name inside dir, at most max bytes: what a less-trusted
// process may have written is read bounded and never through a link, a FIFO or a device.
func ReadFile(dir, name string, max int64) ([]byte, error) {
	f, err := OpenBeneath(dir, name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", f.Name(), fi.Mode().Type())
	}
	if fi.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, over the %d this reads", f.Name(), fi.Size(), max)
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s is over the %d bytes this reads", f.Name(), max)
	}
	return data, nil
}

func tempName(name string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf(".%s.tmp.%d.%s", name, os.Getpid(), hex.EncodeToString(b[:])), nil
}

// WriteFileAtomic replaces dir/name by a file holding data: readers see the old file or the
// new one, never a part, and a crash leaves at most a temp file. Whatever name was before (a
// link included) is replaced, never written through.
func WriteFileAtomic(dir, name string, data []byte, mode os.FileMode) error {
	if err := singleComponent(name); err != nil {
		return err
	}
	dfd, err := openDir(dir, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	tmp, err := tempName(name)
	if err != nil {
		return err
	}
	fd, err := openAt(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: filepath.Join(dir, tmp), Err: err}
	}
	f := os.NewFile(uintptr(fd), filepath.Join(dir, tmp))
	ok := false
	defer func() {
		if !ok {
			_ = unix.Unlinkat(dfd, tmp, 0)
		}
	}()
	_, err = f.Write(data)
	if err == nil {
		err = unix.Fchmod(fd, sysMode(mode))
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(dir, tmp), err)
	}
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		return &os.PathError{Op: "rename", Path: filepath.Join(dir, name), Err: err}
	}
	ok = true
	return syncDir(dfd, dir)
}

func syncDir(dfd int, dir string) error {
	if err := unix.Fsync(dfd); err != nil {
		return &os.PathError{Op: "fsync", Path: dir, Err: err}
	}
	return nil
}

// SymlinkAtomic points dir/name at target, replacing whatever link or file was there in one
// rename (the bash's `ln -sfn … tmp && mv -T tmp name`): `current` never goes missing.
func SymlinkAtomic(dir, name, target string) error {
	if err := singleComponent(name); err != nil {
		return err
	}
	if target == "" || strings.ContainsRune(target, 0) {
		return fmt.Errorf("symlink target %q is empty or holds a NUL byte", target)
	}
	dfd, err := openDir(dir, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	tmp, err := tempName(name)
	if err != nil {
		return err
	}
	if err := unix.Symlinkat(target, dfd, tmp); err != nil {
		return &os.PathError{Op: "symlink", Path: filepath.Join(dir, tmp), Err: err}
	}
	if err := unix.Renameat(dfd, tmp, dfd, name); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return &os.PathError{Op: "rename", Path: filepath.Join(dir, name), Err: err}
	}
	return syncDir(dfd, dir)
}

// Readlink is the target of the link at path, unresolved.
func Readlink(path string) (string, error) {
	return os.Readlink(path)
}
