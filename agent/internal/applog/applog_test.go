package applog

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// watched yields lines and records the file's largest size seen before each read (after each write).
type watched struct {
	f        *os.File
	left     int
	line     int
	pending  []byte
	largest  int64
	produced int64
}

func (w *watched) Read(p []byte) (int, error) {
	if st, err := w.f.Stat(); err == nil && st.Size() > w.largest {
		w.largest = st.Size()
	}
	if len(w.pending) == 0 {
		if w.left <= 0 {
			return 0, io.EOF
		}
		var b bytes.Buffer
		for b.Len() < 200<<10 && w.left > 0 {
			w.line++
			fmt.Fprintf(&b, "line %08d %s\n", w.line, strings.Repeat("x", 80))
			w.left--
		}
		w.pending = b.Bytes()
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	w.produced += int64(n)
	return n, nil
}

func appendFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "app.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestAFloodNeverGrowsTheFilePastItsBoundAndKeepsTheNewestLines(t *testing.T) {
	f := appendFile(t)
	const bound = 1 << 20
	src := &watched{f: f, left: 100000} // about 9.5 MiB
	at := time.Date(2026, 12, 8, 4, 0, 0, 0, time.UTC)
	if err := Copy(src, f, bound, func() time.Time { return at }); err != nil {
		t.Fatal(err)
	}
	if src.produced < 9*bound {
		t.Fatalf("the flood was only %d bytes", src.produced)
	}
	if src.largest > bound {
		t.Fatalf("app.log reached %d bytes, over its bound of %d", src.largest, bound)
	}
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) > bound {
		t.Fatalf("app.log ends at %d bytes, over its bound", len(b))
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if !strings.HasPrefix(first, "2026-12-08T04:00:00Z app.log reached its bound of 1048576 bytes: emptied in place by the log writer, keeping the ") {
		t.Fatalf("app.log does not start with the trim's note: %q", first)
	}
	last := strings.TrimSuffix(string(b), "\n")
	last = last[strings.LastIndexByte(last, '\n')+1:]
	if !strings.HasPrefix(last, "line 00100000 ") {
		t.Fatalf("the newest line is not the flood's last: %q", last)
	}
	// Every line after the note is whole and in order: the kept output starts at a line.
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")[1:]
	for i, l := range lines {
		if !strings.HasPrefix(l, "line ") || len(l) != len("line 00000000 ")+80 {
			t.Fatalf("line %d after the note is cut: %q", i, l)
		}
	}
	if len(lines) < 1000 {
		t.Fatalf("only %d lines kept over the trim", len(lines))
	}
}

func TestOutputUnderTheBoundIsAppendedWhole(t *testing.T) {
	f := appendFile(t)
	if _, err := f.WriteString("before\n"); err != nil {
		t.Fatal(err)
	}
	if err := Copy(strings.NewReader("one\ntwo\n"), f, 1<<20, time.Now); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.Name())
	if string(b) != "before\none\ntwo\n" {
		t.Fatalf("got %q", b)
	}
}

func TestAFileAlreadyOverTheBoundIsTrimmedAtTheFirstWrite(t *testing.T) {
	f := appendFile(t)
	if _, err := f.Write(bytes.Repeat([]byte("old\n"), 300000)); err != nil {
		t.Fatal(err)
	}
	if err := Copy(strings.NewReader("new\n"), f, 1<<20, time.Now); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f.Name())
	if !strings.HasSuffix(string(b), "keeping the 0 bytes of output before this line\nnew\n") || bytes.Contains(b, []byte("old")) {
		t.Fatalf("got %q", b)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1m": 1 << 20, "64m": 64 << 20, "2048k": 2 << 20, "1g": 1 << 30} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "m", "64", "64M", "064m", "-1m", "512k", "1t", "64mb", "9999999g"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) was accepted", in)
		}
	}
}
