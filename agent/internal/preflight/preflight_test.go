package preflight

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, root, p, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(root+p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(root+p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheckNameRefusesSomeoneElsesUnitOrCommand(t *testing.T) {
	cases := []struct {
		name, service, file, text, refusal string
	}{
		{"a fresh name", "complinist", "", "", ""},
		{"our own units from an earlier deploy", "complinist", "/etc/systemd/system/complinist.service", "# " + Marker + ". Hand edits…\n[Unit]\n", ""},
		{"our own host program", "complinist", "/usr/local/sbin/complinist", "#!/bin/bash\n# " + Marker + " (complinist)\n", ""},
		{"Debian's nftables unit", "nftables", "/lib/systemd/system/nftables.service", "[Unit]\n", "nftables.service is an existing unit (/lib/systemd/system/nftables.service) the stack did not create"},
		{"a hand-written unit in /etc", "billing", "/etc/systemd/system/billing.service", "[Unit]\n", "billing.service is an existing unit"},
		{"another daemon's proxy unit name", "web", "/usr/lib/systemd/system/web-proxy.service", "[Unit]\n", "web-proxy.service is an existing unit"},
		{"timeout on root's PATH", "timeout", "/usr/bin/timeout", "ELF", "service.name timeout is a command on root's PATH (/usr/bin/timeout)"},
		{"bash", "bash", "/bin/bash", "ELF", "is a command on root's PATH (/bin/bash)"},
		{"someone's own tool in /usr/local/sbin", "tool", "/usr/local/sbin/tool", "#!/bin/sh\n", "/usr/local/sbin/tool exists and is not the stack's host program"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if c.file != "" {
				write(t, root, c.file, c.text)
			}
			err := Host{Root: root}.CheckName(c.service)
			if c.refusal == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.refusal) || !strings.Contains(err.Error(), "service.name") {
				t.Fatalf("want a refusal naming %q, got %v", c.refusal, err)
			}
		})
	}
}

func TestCheckUserRefusesRootTheSSHUserSystemAccountsAndAnotherStacksUser(t *testing.T) {
	myUID := os.Getuid()
	accounts := map[string]*user.User{
		"haproxy":    {Username: "haproxy", Uid: "108", Gid: "115", Name: ""},
		"toor":       {Username: "toor", Uid: "0", Gid: "0"},
		"complinist": {Username: "complinist", Uid: "998", Gid: "998", Name: UserComment("complinist")},
		"legacy":     {Username: "legacy", Uid: "997", Gid: "997", Name: ""},
		"alice":      {Username: "alice", Uid: "1001", Gid: "1001"},
	}
	lookup := func(name string) (*user.User, error) {
		if u, ok := accounts[name]; ok {
			return u, nil
		}
		return nil, user.UnknownUserError(name)
	}
	cases := []struct {
		name, user, refusal string
		mark                bool
		setup               func(t *testing.T, root string)
	}{
		{name: "a new user: created by the apply", user: "complinist-app"},
		{name: "the stack's own, marked", user: "complinist"},
		{name: "an ordinary account", user: "alice"},
		{name: "root by name", user: "root", refusal: "service.user root: the app never runs as root"},
		{name: "a root-equivalent account", user: "toor", refusal: "service.user toor is uid 0 gid 0"},
		{name: "the SSH user", user: "deploy", refusal: "service.user deploy is the SSH user"},
		{name: "haproxy, a system account the stack did not create", user: "haproxy", refusal: "service.user haproxy is a system account (uid 108) this stack did not create"},
		{
			name: "another stack's service user", user: "alice", refusal: "is the user of another stack's service on this host (billing@.service)",
			setup: func(t *testing.T, root string) {
				write(t, root, "/etc/systemd/system/billing@.service", "# "+Marker+".\n[Service]\nUser=alice\n")
			},
		},
		{
			name: "a bash-era stack's unmarked system user owning shared/: accepted, to be marked", user: "legacy", mark: true,
			setup: func(t *testing.T, root string) {
				if myUID != 0 {
					t.Skip("needs root: shared/ is chowned to the account")
				}
				if err := os.MkdirAll(root+"/opt/complinist/shared", 0o750); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(root+"/opt/complinist/shared", 997, 997); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if c.setup != nil {
				c.setup(t, root)
			}
			mark, err := Host{Root: root, LookupUser: lookup}.CheckUser("complinist", c.user, "deploy", "/opt/complinist")
			if c.refusal == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if mark != c.mark {
					t.Fatalf("mark %v, want %v", mark, c.mark)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.refusal) {
				t.Fatalf("want %q, got %v", c.refusal, err)
			}
		})
	}
}
