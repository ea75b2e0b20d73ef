// Package tarx extracts a release artifact (a gzip'd tar) as root into a fresh directory only
// root can enter, refusing the whole artifact at the first entry that could make root write
// outside that directory or leave behind anything but plain files, directories and links
// that stay inside the release.
//
// The artifact is the CI's, not root's: its names and link targets are data. Every entry is
// created relative to a descriptor of the destination with openat2 RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS, so a link extracted earlier is never written through, whatever the
// name checks below might miss.
package tarx

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"complinist/agent/internal/layout"
)

// Limits bound what an artifact may unpack to: a small compressed upload must not fill the
// disk or the inode table.
type Limits struct {
	MaxBytes   int64 // of file contents; 0: 4 GiB
	MaxEntries int   // 0: 200000
}

const (
	defaultMaxBytes   = 4 << 30
	defaultMaxEntries = 200000
)

// RefusedError names the entry the artifact was refused for.
type RefusedError struct {
	Entry  string
	Reason string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("entry %q: %s", e.Entry, e.Reason)
}

func refuse(name, format string, a ...any) error {
	return &RefusedError{Entry: name, Reason: fmt.Sprintf(format, a...)}
}

const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

func openat2(dirfd int, name string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW), Resolve: resolve}
	if flags&unix.O_CREAT != 0 {
		how.Mode = uint64(mode)
	}
	for {
		fd, err := unix.Openat2(dirfd, name, &how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if errors.Is(err, unix.ENOSYS) {
			// Before Linux 5.6: one component at a time with O_NOFOLLOW is as safe, and every
			// name here is one component.
			if name == "." || name == ".." || strings.ContainsRune(name, '/') {
				return -1, unix.EXDEV
			}
			for {
				fd, err = unix.Openat(dirfd, name, flags|unix.O_CLOEXEC|unix.O_NOFOLLOW, mode)
				if !errors.Is(err, unix.EINTR) {
					return fd, err
				}
			}
		}
		return fd, err
	}
}

// Extract unpacks the gzip'd tar r into dest, an existing empty directory only root can enter.
// On an error, whatever was extracted stays for the caller to remove with dest.
//
// Refused, for the whole artifact: absolute names, `..` components, hard links (none is
// needed, and a link to a file outside would hand it over), links whose target is absolute or
// leaves the tree, devices, FIFOs and every other type, setuid/setgid/sticky bits, the
// manifest's name at the top (only the install writes it: a shipped one would make an
// incomplete release look complete), a name that passes through a link, two entries for one
// name, and more than the limits. Files are 0644, or 0755 when the entry has any x bit,
// directories 0755, all owned by the extracting user: the archive's owners and other modes
// mean nothing on the host.
func Extract(r io.Reader, dest string, limits Limits) error {
	if limits.MaxBytes <= 0 {
		limits.MaxBytes = defaultMaxBytes
	}
	if limits.MaxEntries <= 0 {
		limits.MaxEntries = defaultMaxEntries
	}
	destfd, err := unix.Open(dest, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dest, Err: err}
	}
	defer unix.Close(destfd)
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("the artifact is not gzip'd: %w", err)
	}
	defer zr.Close()
	x := extractor{dest: destfd, limits: limits}
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("the artifact is not a valid tar after %d entries: %w", x.entries, err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	return x.dirTimes()
}

type dirTime struct {
	parts []string
	mtime time.Time
}

type extractor struct {
	dest    int
	limits  Limits
	entries int
	bytes   int64
	dirs    []dirTime
}

// components splits an entry name into its path components, refusing what could name
// something outside dest. "" (the top itself, "./") is returned as no components.
func components(name string) ([]string, error) {
	if name == "" {
		return nil, refuse(name, "has an empty name")
	}
	if strings.ContainsRune(name, 0) {
		return nil, refuse(name, "has a NUL byte in its name")
	}
	if strings.HasPrefix(name, "/") {
		return nil, refuse(name, "has an absolute name")
	}
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
		case "..":
			return nil, refuse(name, "has a .. component")
		default:
			parts = append(parts, p)
		}
	}
	return parts, nil
}

// linkInside reports whether target, read from the directory holding a link depth levels
// below the top, stays inside the tree. Only leading `..` are allowed: a `..` after a name
// would apply to wherever that name resolves, which a lexical check cannot know (x -> . then
// y -> x/../.. leaves the tree although it looks one level deep).
func linkInside(depth int, target string) bool {
	if target == "" || strings.HasPrefix(target, "/") || strings.ContainsRune(target, 0) {
		return false
	}
	named := false
	for _, p := range strings.Split(target, "/") {
		switch p {
		case "", ".":
		case "..":
			if named || depth == 0 {
				return false
			}
			depth--
		default:
			named = true
		}
	}
	return true
}

func (x *extractor) entry(hdr *tar.Header, tr io.Reader) error {
	name := hdr.Name
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		// pax global metadata (git archive writes one): no file.
		return nil
	}
	x.entries++
	if x.entries > x.limits.MaxEntries {
		return refuse(name, "is past the %d entries an artifact may have", x.limits.MaxEntries)
	}
	parts, err := components(name)
	if err != nil {
		return err
	}
	if len(parts) > 0 && parts[0] == layout.Manifest {
		return refuse(name, "is %s, the name of the manifest only the install writes", layout.Manifest)
	}
	if hdr.Mode&(04000|02000|01000) != 0 {
		return refuse(name, "has the setuid, setgid or sticky bit (mode %o)", hdr.Mode)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
	case tar.TypeLink:
		return refuse(name, "is a hard link (to %q): artifacts may not have any", hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock:
		return refuse(name, "is a device")
	case tar.TypeFifo:
		return refuse(name, "is a FIFO")
	default:
		return refuse(name, "is of tar type %q, not a file, directory or symbolic link", hdr.Typeflag)
	}
	if len(parts) == 0 {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the top itself ("./"): dest is root's and stays 0700
		}
		return refuse(name, "names the top directory but is no directory")
	}
	if hdr.Typeflag == tar.TypeReg {
		if hdr.Size < 0 || hdr.Size > x.limits.MaxBytes-x.bytes {
			return refuse(name, "takes the artifact past %d bytes", x.limits.MaxBytes)
		}
	}
	if hdr.Typeflag == tar.TypeSymlink && !linkInside(len(parts)-1, hdr.Linkname) {
		return refuse(name, "is a symbolic link to %q, which is absolute or leaves the release", hdr.Linkname)
	}
	parent, err := x.parent(name, parts[:len(parts)-1])
	if err != nil {
		return err
	}
	defer unix.Close(parent)
	last := parts[len(parts)-1]
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(name, parent, parts, hdr.ModTime)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, parent, last); err != nil {
			return writeErr(name, err)
		}
		setTime(parent, last, hdr.ModTime)
		return nil
	default:
		return x.file(name, parent, last, hdr, tr)
	}
}

func writeErr(name string, err error) error {
	switch {
	case errors.Is(err, unix.EEXIST):
		return refuse(name, "is in the artifact twice (or inside a name it already has)")
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return refuse(name, "would be written through a symbolic link the artifact has")
	case errors.Is(err, unix.ENOTDIR):
		return refuse(name, "is inside a name the artifact has as a file")
	}
	return fmt.Errorf("entry %q: %w", name, err)
}

// parent opens (making what is missing, as tar does for an entry listed before its
// directory) the directory an entry goes in, one component at a time and never through a link.
func (x *extractor) parent(name string, dirs []string) (int, error) {
	fd, err := unix.Dup(x.dest)
	if err != nil {
		return -1, err
	}
	unix.CloseOnExec(fd)
	for _, d := range dirs {
		next, err := x.mkdirOpen(fd, d)
		unix.Close(fd)
		if err != nil {
			return -1, writeErr(name, err)
		}
		fd = next
	}
	return fd, nil
}

func (x *extractor) mkdirOpen(parent int, d string) (int, error) {
	made := true
	if err := unix.Mkdirat(parent, d, 0o700); err != nil {
		if !errors.Is(err, unix.EEXIST) {
			return -1, err
		}
		made = false
	}
	fd, err := openat2(parent, d, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, err
	}
	if made {
		// Made 0700 and opened before it is opened up: the umask never decides the mode.
		if err := unix.Fchmod(fd, 0o755); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

func (x *extractor) dir(name string, parent int, parts []string, mtime time.Time) error {
	fd, err := x.mkdirOpen(parent, parts[len(parts)-1])
	if err != nil {
		return writeErr(name, err)
	}
	unix.Close(fd)
	// A directory's time changes with every entry made in it: set once all are in.
	if !mtime.IsZero() {
		x.dirs = append(x.dirs, dirTime{parts: parts, mtime: mtime})
	}
	return nil
}

func (x *extractor) file(name string, parent int, last string, hdr *tar.Header, tr io.Reader) error {
	mode := uint32(0o644)
	if hdr.Mode&0o111 != 0 {
		mode = 0o755
	}
	fd, err := openat2(parent, last, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
	if err != nil {
		return writeErr(name, err)
	}
	f := os.NewFile(uintptr(fd), last)
	n, err := io.Copy(f, io.LimitReader(tr, hdr.Size))
	x.bytes += n
	if err == nil && n != hdr.Size {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = unix.Fchmod(fd, mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	setTime(parent, last, hdr.ModTime)
	return nil
}

// setTime keeps the artifact's modification times, as tar does: two hosts serving one
// release then agree on what mtime-derived validators (Last-Modified, ETags) say.
func setTime(parent int, name string, t time.Time) {
	if t.IsZero() {
		return
	}
	ts := unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
	_ = unix.UtimesNanoAt(parent, name, []unix.Timespec{ts, ts}, unix.AT_SYMLINK_NOFOLLOW)
}

func (x *extractor) dirTimes() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		parent, err := x.parent(strings.Join(d.parts, "/"), d.parts[:len(d.parts)-1])
		if err != nil {
			return err
		}
		setTime(parent, d.parts[len(d.parts)-1], d.mtime)
		unix.Close(parent)
	}
	return nil
}
