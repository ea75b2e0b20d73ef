package tarx

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
}

func tarBytes(t testing.TB, ents []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, ModTime: mtime, Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fresh is an empty 0700 dest inside its own parent, which must hold nothing else afterwards.
func fresh(t testing.TB) (parent, dest string) {
	parent = t.TempDir()
	dest = filepath.Join(parent, "dest")
	if err := os.Mkdir(dest, 0o700); err != nil {
		t.Fatal(err)
	}
	return parent, dest
}

func onlyDest(t testing.TB, parent string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "dest" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("written outside dest: %q", names)
	}
}

func TestGoodTree(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	parent, dest := fresh(t)
	data := tarBytes(t, []ent{
		{name: "./", typ: tar.TypeDir, mode: 0o755},
		{name: "./lib/deep/x.txt", typ: tar.TypeReg, body: "before its dir"},
		{name: "./lib/", typ: tar.TypeDir, mode: 0o700},
		{name: "./lib/app.js", typ: tar.TypeReg, body: "console.log(1)", mode: 0o600},
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/app", typ: tar.TypeSymlink, link: "../lib/app.js", mode: 0o777},
		{name: "bin/run", typ: tar.TypeReg, body: "#!/bin/sh\n", mode: 0o700},
		{name: "bin/self", typ: tar.TypeSymlink, link: "./run"},
		{name: "top", typ: tar.TypeSymlink, link: "lib/deep"},
		{name: "lib/deep/up", typ: tar.TypeSymlink, link: "../../bin//run"},
		{name: "a//b/./c", typ: tar.TypeReg, body: "c"},
		{name: "sub/.complinist-release", typ: tar.TypeReg, body: "nested: not the manifest"},
	})
	if err := Extract(bytes.NewReader(gz(t, data)), dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	onlyDest(t, parent)
	want := map[string]string{ // path: mode or link target
		"lib":                     "drwxr-xr-x",
		"lib/deep":                "drwxr-xr-x",
		"lib/deep/x.txt":          "-rw-r--r--",
		"lib/app.js":              "-rw-r--r--",
		"bin":                     "drwxr-xr-x",
		"bin/app":                 "-> ../lib/app.js",
		"bin/run":                 "-rwxr-xr-x",
		"bin/self":                "-> ./run",
		"top":                     "-> lib/deep",
		"lib/deep/up":             "-> ../../bin//run",
		"a":                       "drwxr-xr-x",
		"a/b":                     "drwxr-xr-x",
		"a/b/c":                   "-rw-r--r--",
		"sub":                     "drwxr-xr-x",
		"sub/.complinist-release": "-rw-r--r--",
	}
	got := map[string]string{}
	err := filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dest {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			got[rel] = "-> " + l
		} else {
			got[rel] = fi.Mode().String()
		}
		if !fi.ModTime().Equal(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)) && rel != "a" && rel != "a/b" && rel != "sub" && rel != "lib/deep" {
			t.Errorf("%s: mtime %v", rel, fi.ModTime())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected %s (%s)", k, got[k])
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "bin", "app")); string(b) != "console.log(1)" {
		t.Errorf("bin/app reads %q", b)
	}
	if fi, _ := os.Stat(dest); fi.Mode().Perm() != 0o700 {
		t.Errorf("dest mode %v: the top entry must not open it up", fi.Mode())
	}
}

func TestRefusals(t *testing.T) {
	outside := ent{name: "x", typ: tar.TypeReg, body: "x"}
	for _, c := range []struct {
		why   string
		ents  []ent
		entry string
	}{
		{"absolute", []ent{{name: "/etc/evil", typ: tar.TypeReg, body: "x"}}, "/etc/evil"},
		{"dotdot", []ent{{name: "a/../../evil", typ: tar.TypeReg, body: "x"}}, "a/../../evil"},
		{"dotdot dir", []ent{{name: "../", typ: tar.TypeDir}}, "../"},
		{"hard link", []ent{outside, {name: "h", typ: tar.TypeLink, link: "x"}}, "h"},
		{"absolute symlink", []ent{{name: "l", typ: tar.TypeSymlink, link: "/etc/shadow"}}, "l"},
		{"escaping symlink", []ent{{name: "a/l", typ: tar.TypeSymlink, link: "../../x"}}, "a/l"},
		{"escaping symlink at the top", []ent{{name: "shared", typ: tar.TypeSymlink, link: "../../shared"}}, "shared"},
		{"dotdot after a name", []ent{{name: "l", typ: tar.TypeSymlink, link: "a/../b"}}, "l"},
		{"empty symlink", []ent{{name: "l", typ: tar.TypeSymlink, link: ""}}, "l"},
		{"char device", []ent{{name: "null", typ: tar.TypeChar}}, "null"},
		{"block device", []ent{{name: "sda", typ: tar.TypeBlock}}, "sda"},
		{"fifo", []ent{{name: "p", typ: tar.TypeFifo}}, "p"},
		{"contiguous", []ent{{name: "c", typ: tar.TypeCont}}, "c"},
		{"setuid", []ent{{name: "su", typ: tar.TypeReg, body: "x", mode: 0o4755}}, "su"},
		{"setgid dir", []ent{{name: "d/", typ: tar.TypeDir, mode: 0o2755}}, "d/"},
		{"sticky dir", []ent{{name: "d/", typ: tar.TypeDir, mode: 0o1777}}, "d/"},
		{"manifest", []ent{{name: ".complinist-release", typ: tar.TypeReg, body: "sha256=x"}}, ".complinist-release"},
		{"manifest dot", []ent{{name: "./.complinist-release", typ: tar.TypeReg, body: "sha256=x"}}, "./.complinist-release"},
		{"manifest dir", []ent{{name: "./.complinist-release/", typ: tar.TypeDir}}, "./.complinist-release/"},
		{"manifest link", []ent{{name: ".complinist-release", typ: tar.TypeSymlink, link: "a"}}, ".complinist-release"},
		{"inside manifest", []ent{{name: ".complinist-release/x", typ: tar.TypeReg}}, ".complinist-release/x"},
		{"through a link", []ent{{name: "sub/", typ: tar.TypeDir}, {name: "l", typ: tar.TypeSymlink, link: "sub"}, {name: "l/x", typ: tar.TypeReg, body: "x"}}, "l/x"},
		{"dir through a link", []ent{{name: "l", typ: tar.TypeSymlink, link: "."}, {name: "l/d/", typ: tar.TypeDir}}, "l/d/"},
		{"file over a link", []ent{{name: "f", typ: tar.TypeReg, body: "1"}, {name: "l", typ: tar.TypeSymlink, link: "f"}, {name: "l", typ: tar.TypeReg, body: "2"}}, "l"},
		{"dir over a link", []ent{{name: "l", typ: tar.TypeSymlink, link: "."}, {name: "l/", typ: tar.TypeDir}}, "l/"},
		{"twice", []ent{outside, outside}, "x"},
		{"inside a file", []ent{outside, {name: "x/y", typ: tar.TypeReg}}, "x/y"},
		{"top as a file", []ent{{name: ".", typ: tar.TypeReg}}, "."},
	} {
		t.Run(c.why, func(t *testing.T) {
			parent, dest := fresh(t)
			err := Extract(bytes.NewReader(gz(t, tarBytes(t, c.ents))), dest, Limits{})
			var re *RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("Extract = %v, want a refusal", err)
			}
			if re.Entry != c.entry || !strings.Contains(err.Error(), `"`+c.entry+`"`) {
				t.Errorf("refused %q (%v), want %q", re.Entry, err, c.entry)
			}
			onlyDest(t, parent)
		})
	}
}

func TestThroughLinkWritesNothingAtTarget(t *testing.T) {
	_, dest := fresh(t)
	ents := []ent{{name: "sub/", typ: tar.TypeDir}, {name: "l", typ: tar.TypeSymlink, link: "sub"}, {name: "l/x", typ: tar.TypeReg, body: "x"}}
	if err := Extract(bytes.NewReader(gz(t, tarBytes(t, ents))), dest, Limits{}); err == nil {
		t.Fatal("passed")
	}
	if _, err := os.Lstat(filepath.Join(dest, "sub", "x")); !os.IsNotExist(err) {
		t.Errorf("written through the link: %v", err)
	}
}

func TestLimits(t *testing.T) {
	ents := []ent{{name: "a", typ: tar.TypeReg, body: "12345"}, {name: "b", typ: tar.TypeReg, body: "67890"}}
	_, dest := fresh(t)
	if err := Extract(bytes.NewReader(gz(t, tarBytes(t, ents))), dest, Limits{MaxBytes: 10}); err != nil {
		t.Errorf("exactly at MaxBytes: %v", err)
	}
	_, dest = fresh(t)
	var re *RefusedError
	if err := Extract(bytes.NewReader(gz(t, tarBytes(t, ents))), dest, Limits{MaxBytes: 9}); !errors.As(err, &re) || re.Entry != "b" {
		t.Errorf("past MaxBytes: %v", err)
	}
	_, dest = fresh(t)
	if err := Extract(bytes.NewReader(gz(t, tarBytes(t, ents))), dest, Limits{MaxEntries: 1}); !errors.As(err, &re) || re.Entry != "b" {
		t.Errorf("past MaxEntries: %v", err)
	}
}

func TestNotGzipOrTar(t *testing.T) {
	_, dest := fresh(t)
	if err := Extract(strings.NewReader("plain"), dest, Limits{}); err == nil {
		t.Error("not gzip: passed")
	}
	_, dest = fresh(t)
	if err := Extract(bytes.NewReader(gz(t, []byte(strings.Repeat("x", 1024)))), dest, Limits{}); err == nil {
		t.Error("not tar: passed")
	}
	// The destination itself a link: refused.
	parent, dest := fresh(t)
	link := filepath.Join(parent, "link")
	if err := os.Symlink(dest, link); err != nil {
		t.Fatal(err)
	}
	if err := Extract(bytes.NewReader(gz(t, tarBytes(t, []ent{{name: "f", typ: tar.TypeReg}}))), link, Limits{}); err == nil {
		t.Error("extracted into a linked destination")
	}
}

func TestPaxGlobalHeaderIgnored(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "deadbeef"}}); err != nil {
		t.Fatal(err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	parent, dest := fresh(t)
	if err := Extract(bytes.NewReader(gz(t, buf.Bytes())), dest, Limits{}); err != nil {
		t.Fatal(err)
	}
	onlyDest(t, parent)
	if _, err := os.Lstat(filepath.Join(dest, "f")); err != nil {
		t.Error(err)
	}
}

func TestLinkInside(t *testing.T) {
	for _, c := range []struct {
		depth  int
		target string
		ok     bool
	}{
		{0, "a", true},
		{0, "./a/b", true},
		{0, ".", true},
		{0, "..", false},
		{1, "..", true},
		{1, "../a", true},
		{1, "../..", false},
		{2, "../../a//b", true},
		{0, "a/..", false},
		{3, "a/../b", false},
		{0, "/a", false},
		{0, "", false},
		{5, "../a/..", false},
	} {
		if got := linkInside(c.depth, c.target); got != c.ok {
			t.Errorf("linkInside(%d, %q) = %v", c.depth, c.target, got)
		}
	}
}

func FuzzExtract(f *testing.F) {
	f.Add(tarBytes(f, []ent{{name: "./", typ: tar.TypeDir}, {name: "a/b", typ: tar.TypeReg, body: "x"}, {name: "l", typ: tar.TypeSymlink, link: "a/b"}}))
	f.Add(tarBytes(f, []ent{{name: "l", typ: tar.TypeSymlink, link: "."}, {name: "l/x", typ: tar.TypeReg, body: "x"}}))
	f.Add(tarBytes(f, []ent{{name: "d/l", typ: tar.TypeSymlink, link: "../x"}, {name: "y", typ: tar.TypeSymlink, link: "d/l"}}))
	f.Add(tarBytes(f, []ent{{name: "../x", typ: tar.TypeReg, body: "x"}}))
	f.Add(tarBytes(f, []ent{{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		parent, dest := fresh(t)
		_ = Extract(bytes.NewReader(gz(t, data)), dest, Limits{MaxBytes: 1 << 20, MaxEntries: 1000})
		onlyDest(t, parent)
		// Whatever stayed: every link that resolves, resolves inside dest.
		_ = filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.Type()&fs.ModeSymlink != 0 {
				if r, err := filepath.EvalSymlinks(p); err == nil && r != dest && !strings.HasPrefix(r, dest+"/") {
					t.Fatalf("link %s resolves to %s, outside %s", p, r, dest)
				}
			}
			if d.Type()&(fs.ModeNamedPipe|fs.ModeDevice|fs.ModeSocket|fs.ModeCharDevice) != 0 {
				t.Fatalf("%s is of type %v", p, d.Type())
			}
			if fi, err := d.Info(); err == nil && fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
				t.Fatalf("%s has mode %v", p, fi.Mode())
			}
			return nil
		})
	})
}
