package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestLogCommandsRefuseBadArgumentsBeforeStartingAnything(t *testing.T) {
	e := &env{prog: "/usr/local/sbin/complinist", service: "complinist", stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"log-pipe without a command":         {[]string{"log-pipe", "64m"}, "usage: /usr/local/sbin/complinist log-pipe BOUND /ABSOLUTE/COMMAND"},
		"log-pipe with a relative command":   {[]string{"log-pipe", "64m", "sh", "-c", "true"}, "/ABSOLUTE/COMMAND"},
		"log-pipe with a bound without unit": {[]string{"log-pipe", "64", "/bin/true"}, `size "64": want digits and one unit of k, m, g`},
		"log-pipe with a bound under 1m":     {[]string{"log-pipe", "512k", "/bin/true"}, "the log bound must be at least 1m"},
		"log-writer without a bound":         {[]string{"log-writer"}, "usage: /usr/local/sbin/complinist log-writer BOUND"},
		"log-writer with a bad bound":        {[]string{"log-writer", "lots"}, `size "lots"`},
		"container-run with a bad app.log bound": {[]string{"container-run", "5001", "--user", "complinist", "--memory", "512m", "--pids", "256", "--tmp-size", "64m",
			"--log-max-size", "10m", "--log-max-files", "3", "--app-log-bound", "1t"}, `--app-log-bound: size "1t"`},
	} {
		t.Run(name, func(t *testing.T) {
			err := e.dispatch(tc.args)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(ue.msg, tc.want) {
				t.Fatalf("want a usage error containing %q, got %v", tc.want, err)
			}
		})
	}
}

func TestTheWriterRunsAsTheServiceUserNeverRoot(t *testing.T) {
	c, err := serviceCredential("999:998")
	if err != nil || c.Uid != 999 || c.Gid != 998 || c.Groups == nil || len(c.Groups) != 0 {
		t.Fatalf("got %+v, %v: want uid 999, gid 998 and no supplementary groups", c, err)
	}
	for _, bad := range []string{"0:998", "999:0", "999", "a:b", ""} {
		if _, err := serviceCredential(bad); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}
