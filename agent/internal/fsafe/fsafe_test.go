package fsafe

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// base is a trusted temp directory: RootUID is the test's uid and CheckTrusted stops at it
// (above it is /tmp, world-writable).
func base(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	oldUID, oldTop := RootUID, top
	RootUID, top = os.Getuid(), dir
	t.Cleanup(func() { RootUID, top = oldUID, oldTop })
	return dir
}

func mkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	// Raw mode bits (0o1777 is sticky): os.Chmod would read 0o1000 as no bit of its own.
	if err := syscall.Chmod(p, uint32(mode)); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, p, text string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckTrusted(t *testing.T) {
	b := base(t)
	mkdir(t, filepath.Join(b, "ok"), 0o755)
	mkdir(t, filepath.Join(b, "ok", "deep"), 0o700)
	mkdir(t, filepath.Join(b, "real"), 0o755)
	mkdir(t, filepath.Join(b, "real", "x"), 0o755)
	if err := os.Symlink("real", filepath.Join(b, "link")); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(b, "gw"), 0o775)
	mkdir(t, filepath.Join(b, "gw", "x"), 0o755)
	mkdir(t, filepath.Join(b, "ow"), 0o757)
	mkdir(t, filepath.Join(b, "sticky"), 0o1777)
	mkdir(t, filepath.Join(b, "sticky", "x"), 0o755)
	write(t, filepath.Join(b, "file"), "")

	for _, c := range []struct {
		path string
		want string // "" is trusted; else a part of the error
	}{
		{b, ""},
		{filepath.Join(b, "ok"), ""},
		{filepath.Join(b, "ok", "deep"), ""},
		{filepath.Join(b, "link", "x"), filepath.Join(b, "link") + " is a symbolic link: the deploy needs it and every directory above it to be root's"},
		{filepath.Join(b, "link"), "is a symbolic link"},
		{filepath.Join(b, "gw", "x"), filepath.Join(b, "gw") + " is owned by "},
		{filepath.Join(b, "gw", "x"), " with mode 0775: the deploy needs it and every directory above it to be root's, not a symbolic link and writable by root only (fix: chown root:root " + filepath.Join(b, "gw") + " && chmod go-w " + filepath.Join(b, "gw") + ", or choose another baseDir)"},
		{filepath.Join(b, "ow"), "with mode 0757"},
		{filepath.Join(b, "sticky", "x"), "with mode 1777"},
		{filepath.Join(b, "file"), "is not a directory"},
		{filepath.Join(b, "missing"), "no such file"},
		{"relative/path", "not an absolute, normalized path"},
		{b + "/ok/../ok", "not an absolute, normalized path"},
	} {
		err := CheckTrusted(c.path)
		if c.want == "" {
			if err != nil {
				t.Errorf("CheckTrusted(%s): %v", c.path, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("CheckTrusted(%s) = %v, want …%s…", c.path, err, c.want)
		}
	}
}

func TestCheckTrustedRealRoot(t *testing.T) {
	st, err := os.Stat("/tmp")
	if err != nil || st.Mode().Perm()&0o002 == 0 {
		t.Skip("no world-writable /tmp")
	}
	dir := t.TempDir() // under /tmp (or $TMPDIR)
	RootUIDWas := RootUID
	RootUID = os.Getuid()
	defer func() { RootUID = RootUIDWas }()
	err = CheckTrusted(dir)
	if err == nil {
		t.Fatalf("CheckTrusted(%s) under a world-writable directory passed", dir)
	}
	if !strings.Contains(err.Error(), "with mode 1777") && !strings.Contains(err.Error(), "is owned by") {
		t.Errorf("error %v", err)
	}
}

func TestCheckTrustedOtherOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	b := base(t)
	d := filepath.Join(b, "theirs")
	mkdir(t, d, 0o755)
	if err := os.Chown(d, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(d, "x"), 0o755)
	err := CheckTrusted(filepath.Join(d, "x"))
	if err == nil || !strings.Contains(err.Error(), d+" is owned by ") || !strings.Contains(err.Error(), "(uid 65534) with mode 0755") {
		t.Errorf("CheckTrusted: %v", err)
	}
}

func TestEnsureDir(t *testing.T) {
	b := base(t)
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	p := filepath.Join(b, "a", "b", "c")
	created, err := EnsureDir(p, 0o750)
	if err != nil || !created {
		t.Fatalf("EnsureDir = %v, %v", created, err)
	}
	for _, d := range []string{filepath.Join(b, "a"), filepath.Join(b, "a", "b"), p} {
		fi, err := os.Lstat(d)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
			t.Errorf("%s: %v %v", d, fi.Mode(), err)
		}
	}
	if created, err := EnsureDir(p, 0o750); err != nil || created {
		t.Errorf("again: %v, %v", created, err)
	}
	// Nothing is created under an untrusted directory.
	gw := filepath.Join(b, "gw")
	mkdir(t, gw, 0o775)
	if _, err := EnsureDir(filepath.Join(gw, "x", "y"), 0o755); err == nil {
		t.Error("EnsureDir under a g+w directory passed")
	}
	if _, err := os.Lstat(filepath.Join(gw, "x")); !os.IsNotExist(err) {
		t.Error("EnsureDir created under a g+w directory")
	}
	// An existing untrusted path is refused.
	if _, err := EnsureDir(gw, 0o755); err == nil {
		t.Error("EnsureDir of a g+w directory passed")
	}
	// Through a link: refused, nothing created at the link's target.
	mkdir(t, filepath.Join(b, "real"), 0o755)
	if err := os.Symlink("real", filepath.Join(b, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureDir(filepath.Join(b, "link", "x"), 0o755); err == nil {
		t.Error("EnsureDir through a link passed")
	}
	if _, err := os.Lstat(filepath.Join(b, "real", "x")); !os.IsNotExist(err) {
		t.Error("EnsureDir created through a link")
	}
}

func testOpenBeneath(t *testing.T) {
	b := base(t)
	mkdir(t, filepath.Join(b, "d"), 0o755)
	mkdir(t, filepath.Join(b, "d", "sub"), 0o755)
	write(t, filepath.Join(b, "d", "file"), "in")
	write(t, filepath.Join(b, "d", "sub", "file"), "deep")
	write(t, filepath.Join(b, "outside"), "out")
	if err := os.Symlink("file", filepath.Join(b, "d", "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub", filepath.Join(b, "d", "dirlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d", filepath.Join(b, "dlink")); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(b, "d")
	read := func(dir, name string) (string, error) {
		f, err := OpenBeneath(dir, name, unix.O_RDONLY, 0)
		if err != nil {
			return "", err
		}
		defer f.Close()
		buf := make([]byte, 10)
		n, _ := f.Read(buf)
		return string(buf[:n]), nil
	}
	if got, err := read(d, "file"); err != nil || got != "in" {
		t.Errorf("file: %q %v", got, err)
	}
	if !noOpenat2.Load() {
		if got, err := read(d, "sub/file"); err != nil || got != "deep" {
			t.Errorf("sub/file: %q %v", got, err)
		}
	}
	for _, name := range []string{"link", "dirlink/file", "../outside", "sub/../../outside", "/etc/passwd", ""} {
		if got, err := read(d, name); err == nil {
			t.Errorf("OpenBeneath(%q) opened %q", name, got)
		}
	}
	if _, err := read(filepath.Join(b, "dlink"), "file"); err == nil {
		t.Error("OpenBeneath through a linked dir passed")
	}
	if _, err := read(d, "link"); !errors.Is(err, unix.ELOOP) {
		t.Errorf("a link at the last component: %v, want ELOOP", err)
	}
	// Creating through a dangling link creates nothing at its target.
	if err := os.Symlink("../created", filepath.Join(d, "dangling")); err != nil {
		t.Fatal(err)
	}
	if f, err := OpenBeneath(d, "dangling", unix.O_WRONLY|unix.O_CREAT, 0o644); err == nil {
		f.Close()
		t.Error("created through a dangling link")
	}
	if _, err := os.Lstat(filepath.Join(b, "created")); !os.IsNotExist(err) {
		t.Error("the dangling link's target was created")
	}
}

func TestOpenBeneath(t *testing.T) { testOpenBeneath(t) }

// TestOpenBeneathWithoutOpenat2 is the old-kernel path: single names with O_NOFOLLOW.
func TestOpenBeneathWithoutOpenat2(t *testing.T) {
	was := noOpenat2.Load()
	noOpenat2.Store(true)
	defer noOpenat2.Store(was)
	testOpenBeneath(t)
	b := t.TempDir()
	mkdir(t, filepath.Join(b, "sub"), 0o755)
	write(t, filepath.Join(b, "sub", "f"), "x")
	if f, err := OpenBeneath(b, "sub/f", unix.O_RDONLY, 0); err == nil {
		f.Close()
		t.Error("a name with a slash passed without openat2")
	}
}

func TestReadFile(t *testing.T) {
	b := base(t)
	write(t, filepath.Join(b, "f"), "12345")
	if got, err := ReadFile(b, "f", 5); err != nil || string(got) != "12345" {
		t.Errorf("ReadFile: %q %v", got, err)
	}
	if _, err := ReadFile(b, "f", 4); err == nil {
		t.Error("ReadFile over max passed")
	}
	mkdir(t, filepath.Join(b, "dir"), 0o755)
	if _, err := ReadFile(b, "dir", 100); err == nil {
		t.Error("ReadFile of a directory passed")
	}
	if err := syscall.Mkfifo(filepath.Join(b, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := ReadFile(b, "fifo", 100); done <- err }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("ReadFile of a FIFO passed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadFile blocked on a FIFO")
	}
	if err := os.Symlink("f", filepath.Join(b, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(b, "link", 100); err == nil {
		t.Error("ReadFile through a link passed")
	}
}

func leftovers(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp.") {
			t.Errorf("temp left: %s", e.Name())
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	b := base(t)
	d := filepath.Join(b, "d")
	mkdir(t, d, 0o755)
	victim := filepath.Join(b, "victim")
	write(t, victim, "root's file")
	if err := os.Symlink(victim, filepath.Join(d, "name")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(d, "name", []byte("new"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "root's file" {
		t.Errorf("the link's target changed: %q", got)
	}
	fi, err := os.Lstat(filepath.Join(d, "name"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o640 {
		t.Fatalf("name: %v %v", fi.Mode(), err)
	}
	if got, _ := os.ReadFile(filepath.Join(d, "name")); string(got) != "new" {
		t.Errorf("content %q", got)
	}
	if err := WriteFileAtomic(d, "name", []byte("newer"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(d, "name")); string(got) != "newer" {
		t.Errorf("content %q", got)
	}
	leftovers(t, d)
	mkdir(t, filepath.Join(d, "adir"), 0o755)
	if err := WriteFileAtomic(d, "adir", []byte("x"), 0o600); err == nil {
		t.Error("replaced a directory")
	}
	leftovers(t, d)
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if err := WriteFileAtomic(d, bad, []byte("x"), 0o600); err == nil {
			t.Errorf("WriteFileAtomic(%q) passed", bad)
		}
	}
	// The directory itself a link: refused.
	if err := os.Symlink("d", filepath.Join(b, "dlink")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(b, "dlink"), "other", []byte("x"), 0o600); err == nil {
		t.Error("wrote through a linked directory")
	}
}

func TestSymlinkAtomic(t *testing.T) {
	b := base(t)
	if err := SymlinkAtomic(b, "current", "releases/1.0"); err != nil {
		t.Fatal(err)
	}
	if got, err := Readlink(filepath.Join(b, "current")); err != nil || got != "releases/1.0" {
		t.Errorf("Readlink: %q %v", got, err)
	}
	if err := SymlinkAtomic(b, "current", "releases/2.0"); err != nil {
		t.Fatal(err)
	}
	if got, _ := Readlink(filepath.Join(b, "current")); got != "releases/2.0" {
		t.Errorf("Readlink: %q", got)
	}
	write(t, filepath.Join(b, "plain"), "x")
	if err := SymlinkAtomic(b, "plain", "elsewhere"); err != nil {
		t.Fatal(err)
	}
	if got, _ := Readlink(filepath.Join(b, "plain")); got != "elsewhere" {
		t.Errorf("Readlink: %q", got)
	}
	mkdir(t, filepath.Join(b, "adir"), 0o755)
	if err := SymlinkAtomic(b, "adir", "x"); err == nil {
		t.Error("replaced a directory")
	}
	leftovers(t, b)
	if _, err := Readlink(filepath.Join(b, "adir")); err == nil {
		t.Error("Readlink of a directory passed")
	}
}
