package haproxy

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// showStatHeader is the CSV header HAProxy 2.6.12 (Debian bookworm) prints for `show stat`
// (the same capture as test/unit/render/runtimeApi.ts).
const showStatHeader = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,agent_status,agent_code,agent_duration,check_desc,agent_desc,check_rise,check_fall,check_health,agent_rise,agent_fall,agent_health,addr,cookie,mode,algo,conn_rate,conn_rate_max,conn_tot,intercepted,dcon,dses,wrew,connect,reuse,cache_lookups,cache_hits,srv_icur,src_ilim,qtime_max,ctime_max,rtime_max,ttime_max,eint,idle_conn_cur,safe_conn_cur,used_conn_cur,need_conn_est,uweight,agg_server_status,agg_server_check_status,agg_check_status,-,ssl_sess,ssl_reused_sess,ssl_failed_handshake,h2_headers_rcvd,h2_data_rcvd,h2_settings_rcvd,h2_rst_stream_rcvd,h2_goaway_rcvd,h2_detected_conn_protocol_errors,h2_detected_strm_protocol_errors,h2_rst_stream_resp,h2_goaway_resp,h2_open_connections,h2_backend_open_streams,h2_total_connections,h2_backend_total_streams,h1_open_connections,h1_open_streams,h1_total_connections,h1_total_streams,h1_bytes_in,h1_bytes_out,h1_spliced_bytes_in,h1_spliced_bytes_out,"

func headerCols() []string {
	return strings.Split(strings.TrimPrefix(showStatHeader, "# "), ",")
}

// showStat is a `show stat` answer with cols as its header and one row per map, as HAProxy
// prints it: unset columns empty, a trailing comma, an empty line at the end.
func showStat(cols []string, rows ...map[string]string) string {
	var b strings.Builder
	b.WriteString("# " + strings.Join(cols, ",") + "\n")
	for _, r := range rows {
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = r[c]
		}
		b.WriteString(strings.Join(vals, ",") + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

// realistic is what a 2.6 proxy running the canary config answers: the frontend, both
// instance servers, the BACKEND aggregate, and the stats listener.
func realistic(cols []string) string {
	return showStat(cols,
		map[string]string{"pxname": "complinist", "svname": "FRONTEND", "status": "OPEN", "req_tot": "1000", "hrsp_5xx": "40", "type": "0", "mode": "http"},
		map[string]string{"pxname": "complinist", "svname": "i5001", "status": "no check", "weight": "90", "act": "1", "req_tot": "900", "rtime": "12", "hrsp_2xx": "890", "hrsp_5xx": "10", "econ": "2", "eresp": "1", "type": "2", "addr": "127.0.0.1:5001", "cookie": "i5001", "mode": "http", "check_desc": `"Layer7 check passed, with a comma"`},
		map[string]string{"pxname": "complinist", "svname": "i5002", "status": "MAINT", "weight": "10", "req_tot": "100", "hrsp_5xx": "30", "econ": "", "eresp": "junk", "type": "2", "addr": "127.0.0.1:5002", "cookie": "i5002", "mode": "http"},
		map[string]string{"pxname": "complinist", "svname": "BACKEND", "status": "UP", "weight": "100", "req_tot": "1000", "hrsp_5xx": "40", "econ": "2", "type": "1"},
		map[string]string{"pxname": "other", "svname": "i5001", "status": "UP", "weight": "1", "req_tot": "7", "type": "2"},
		map[string]string{"pxname": "stats", "svname": "FRONTEND", "status": "OPEN", "type": "0"},
		map[string]string{"pxname": "stats", "svname": "BACKEND", "status": "UP", "type": "1"},
	)
}

func TestParseStats(t *testing.T) {
	want := map[int]Counter{5001: {Requests: 902, Errors: 13, RtimeMs: 12}, 5002: {Requests: 100, Errors: 30}}
	cols := headerCols()
	reversed := slices.Clone(cols)
	slices.Reverse(reversed)
	moved := append([]string{"hrsp_5xx", "req_tot"}, slices.DeleteFunc(slices.Clone(cols), func(c string) bool { return c == "hrsp_5xx" || c == "req_tot" })...)
	for name, c := range map[string][]string{"2.6 order": cols, "reversed": reversed, "counters first": moved} {
		got, err := ParseStats(realistic(c), "complinist")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v %v, want %v", name, got, err, want)
		}
	}
	for _, missing := range []string{"pxname", "svname", "req_tot", "econ", "eresp", "hrsp_5xx"} {
		c := slices.DeleteFunc(slices.Clone(cols), func(c string) bool { return c == missing })
		if got, err := ParseStats(realistic(c), "complinist"); err == nil || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: got %v %v, want an error naming it", missing, got, err)
		}
	}
	for _, bad := range []string{"", "Unknown command.\n\n", "Permission denied\n"} {
		if got, err := ParseStats(bad, "complinist"); err == nil {
			t.Errorf("%q: no error but %v", bad, got)
		}
	}
	// A header without "# " is read the same (awk's sub() had no effect either).
	if got, err := ParseStats("pxname,svname,req_tot,econ,eresp,hrsp_5xx\ncomplinist,i7,5,1,2,3\r\n", "complinist"); err != nil || got[7] != (Counter{Requests: 6, Errors: 6}) {
		t.Errorf("plain header: %v %v", got, err)
	}
	if got, err := ParseStats(realistic(cols), "nothing"); err != nil || len(got) != 0 {
		t.Errorf("another backend: %v %v", got, err)
	}
	// A short row and svnames that are not instance servers.
	short := "# pxname,svname,req_tot,econ,eresp,hrsp_5xx\ncomplinist,i1\ncomplinist,i,1,1,1,1\ncomplinist,x1,1,1,1,1\ncomplinist,i2x,1,1,1,1\ncomplinist,i3,4,0,0,1\ncomplinist,i3,8,0,0,2\n"
	if got, err := ParseStats(short, "complinist"); err != nil || !reflect.DeepEqual(got, map[int]Counter{1: {}, 3: {Requests: 8, Errors: 2}}) {
		t.Errorf("short rows: %v %v", got, err)
	}
}

func TestParseServers(t *testing.T) {
	got, err := ParseServers(realistic(headerCols()), "complinist")
	want := []Server{{5001, "no check", 90}, {5002, "MAINT", 10}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v %v, want %v", got, err, want)
	}
	c := slices.DeleteFunc(headerCols(), func(c string) bool { return c == "weight" })
	if _, err := ParseServers(realistic(c), "complinist"); err == nil {
		t.Fatal("no error without weight")
	}
}

func TestSplitCSV(t *testing.T) {
	for in, want := range map[string][]string{
		"":                {""},
		"a,b,":            {"a", "b", ""},
		`a,"b,c",d`:       {"a", "b,c", "d"},
		`"x""y",z`:        {`x"y`, "z"},
		`"unterminated,a`: {"unterminated,a"},
		`"q"tail,n`:       {"qtail", "n"},
	} {
		if got := splitCSV(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitCSV(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseStats(f *testing.F) {
	f.Add(realistic(headerCols()), "complinist")
	f.Add("# pxname,svname,req_tot,econ,eresp,hrsp_5xx\nb,i1,\"1,2\",x,,9\n", "b")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, csv, backend string) {
		counts, err := ParseStats(csv, backend)
		if err != nil && counts != nil {
			t.Fatalf("error %v with counts %v", err, counts)
		}
		servers, err2 := ParseServers(csv, backend)
		if err2 != nil && servers != nil {
			t.Fatalf("error %v with servers %v", err2, servers)
		}
	})
}

// fakeAPI is a stand-in for the runtime API: answer gets each command line and returns the
// answer (hang: never answer, never close).
type fakeAPI struct {
	path string
	mu   sync.Mutex
	cmds []string
}

func startAPI(t *testing.T, answer func(cmd string) (string, bool)) *fakeAPI {
	t.Helper()
	dir, err := os.MkdirTemp("", "hapi") // t.TempDir() names can be over the 108 bytes of a socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &fakeAPI{path: filepath.Join(dir, "admin.sock")}
	l, err := net.Listen("unix", a.path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				line, err := bufio.NewReader(conn).ReadString('\n')
				if err != nil {
					return
				}
				cmd := strings.TrimSuffix(line, "\n")
				a.mu.Lock()
				a.cmds = append(a.cmds, cmd)
				a.mu.Unlock()
				out, ok := answer(cmd)
				if !ok {
					<-done
					return
				}
				fmt.Fprint(conn, out)
			}()
		}
	}()
	return a
}

func (a *fakeAPI) commands() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.cmds)
}

func TestCommand(t *testing.T) {
	a := startAPI(t, func(cmd string) (string, bool) {
		switch cmd {
		case "hang":
			return "", false
		case "big":
			return strings.Repeat("x", MaxAnswerBytes+1), true
		}
		return "you said " + cmd + "\n", true
	})
	c := Client{Socket: a.path}
	if out, err := c.Command("show info"); err != nil || out != "you said show info\n" {
		t.Fatalf("got %q %v", out, err)
	}
	start := time.Now()
	if out, err := (Client{Socket: a.path, Timeout: 200 * time.Millisecond}).Command("hang"); err == nil {
		t.Fatalf("a proxy that never answers: got %q", out)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("not bounded by the timeout: %v", d)
	}
	if _, err := c.Command("big"); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("an answer over the cap: %v", err)
	}
	if _, err := (Client{Socket: filepath.Join(t.TempDir(), "none.sock")}).Command("show stat"); err == nil {
		t.Fatal("no socket: no error")
	}
}

func TestFlip(t *testing.T) {
	var answer = "\n\n"
	a := startAPI(t, func(string) (string, bool) { return answer, true })
	c := Client{Socket: a.path}
	if err := c.Flip("complinist", 5002, 5001); err != nil {
		t.Fatal(err)
	}
	if got := a.commands(); !reflect.DeepEqual(got, []string{"set server complinist/i5002 state ready; set server complinist/i5001 state maint; set server complinist_host/i5002 state ready; set server complinist_host/i5001 state maint"}) {
		t.Fatalf("commands %q", got)
	}
	answer = "No such server.\n\n"
	err := c.Flip("complinist", 5002, 5001)
	if err == nil || !strings.HasSuffix(err.Error(), ": No such server.") {
		t.Fatalf("refused flip: %v", err)
	}
	answer = strings.Repeat("long\n", 100)
	if err := c.Flip("complinist", 5002, 5001); err == nil || strings.Contains(err.Error(), "\n") || len(err.Error()) > 400 {
		t.Fatalf("a long answer is one bounded line: %v", err)
	}
	hang := startAPI(t, func(string) (string, bool) { return "", false })
	if err := (Client{Socket: hang.path, Timeout: 100 * time.Millisecond}).Flip("complinist", 1, 2); err == nil {
		t.Fatal("a proxy that never answers confirmed the flip")
	}
}

func TestCountsAndServers(t *testing.T) {
	a := startAPI(t, func(cmd string) (string, bool) {
		if cmd == "show stat" {
			return realistic(headerCols()), true
		}
		return "Unknown command.\n\n", true
	})
	c := Client{Socket: a.path}
	counts, err := c.Counts("complinist")
	if err != nil || counts[5001] != (Counter{Requests: 902, Errors: 13, RtimeMs: 12}) || counts[5002] != (Counter{Requests: 100, Errors: 30}) {
		t.Fatalf("counts %v %v", counts, err)
	}
	servers, err := c.Servers("complinist")
	if err != nil || len(servers) != 2 {
		t.Fatalf("servers %v %v", servers, err)
	}
	hang := startAPI(t, func(string) (string, bool) { return "", false })
	if _, err := (Client{Socket: hang.path, Timeout: 100 * time.Millisecond}).Counts("complinist"); err == nil {
		t.Fatal("counts from a proxy that never answers")
	}
}

func TestWaitWeight(t *testing.T) {
	var mu sync.Mutex
	weight, status := "1", "MAINT"
	a := startAPI(t, func(string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		return showStat(headerCols(), map[string]string{"pxname": "complinist", "svname": "i5002", "weight": weight, "status": status}), true
	})
	c := Client{Socket: a.path}
	ctx := context.Background()
	if c.WaitWeight(ctx, "complinist", 5002, 10, time.Now().Add(250*time.Millisecond)) {
		t.Fatal("weight 1 taken for 10")
	}
	go func() {
		time.Sleep(150 * time.Millisecond)
		mu.Lock()
		weight = "10"
		mu.Unlock()
		time.Sleep(150 * time.Millisecond)
		mu.Lock()
		status = "no check"
		mu.Unlock()
	}()
	start := time.Now()
	if !c.WaitWeight(ctx, "complinist", 5002, 10, time.Now().Add(5*time.Second)) {
		t.Fatal("the weight never showed")
	}
	if time.Since(start) < 250*time.Millisecond {
		t.Fatal("a MAINT server counted as serving")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if c.WaitWeight(cancelled, "complinist", 5002, 99, time.Now().Add(5*time.Second)) {
		t.Fatal("cancelled")
	}
}

// HAProxy 2.6's `show sess`, one request hung on the canary, one on the host's backend, the CLI's own.
const showSess = `0x56250c064760: proto=tcpv4 src=172.17.0.1:47234 fe=complinist be=complinist srv=i5002 ts=00 epoch=0 age=12s calls=2 rate=0 cpu=0 lat=0 rq[f=49c40080h,i=0,an=8000h,rx=,wx=,ax=] rp[f=80400000h,i=0,an=1400000h,rx=57s,wx=,ax=] scf=[8,80h,fd=12] scb=[8,11h,fd=13] exp=2s rc=0 c_exp=
0x56250c064761: proto=tcpv4 src=172.17.0.1:47235 fe=complinist be=complinist srv=i5002 ts=00 epoch=0 age=1m5s calls=2 rate=0 cpu=0 lat=0
0x56250c064762: proto=tcpv4 src=172.17.0.1:47236 fe=complinist be=complinist srv=i5001 ts=00 epoch=0 age=0s calls=2 rate=0 cpu=0 lat=0
0x56250c064763: proto=tcpv4 src=127.0.0.1:47237 fe=complinist be=complinist_host srv=i5002 ts=00 epoch=0 age=30s calls=2
0x56250c064764: proto=tcpv4 src=172.17.0.1:47238 fe=complinist be=complinist srv=<none> ts=00 epoch=0 age=9s calls=1
0x56250c064765: proto=tcpv4 src=172.17.0.1:47239 fe=complinist be=complinist srv=i5002 ts=00 epoch=0 age=<1s calls=1
0x56250c17b0d0: proto=unix_stream src=unix:1 fe=GLOBAL be=<NONE> srv=<none> ts=00 epoch=0 age=0s calls=1 rate=1
`

func TestParseSessions(t *testing.T) {
	got := ParseSessions(showSess, "complinist")
	want := map[int][]time.Duration{5002: {12 * time.Second, 65 * time.Second}, 5001: {0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := ParseSessions(showSess, "complinist_host"); !reflect.DeepEqual(got, map[int][]time.Duration{5002: {30 * time.Second}}) {
		t.Fatalf("host backend: got %v", got)
	}
	for in, want := range map[string]time.Duration{"7s": 7 * time.Second, "5m6s": 306 * time.Second, "3h4m": 3*time.Hour + 4*time.Minute, "1d2h": 26 * time.Hour} {
		if d, err := parseAge(in); err != nil || d != want {
			t.Errorf("parseAge(%q) = %v %v, want %v", in, d, err, want)
		}
	}
	for _, bad := range []string{"", "7", "s", "7x", "<1s", "99999999999s"} {
		if _, err := parseAge(bad); err == nil {
			t.Errorf("parseAge(%q) accepted", bad)
		}
	}
}
