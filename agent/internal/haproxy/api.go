package haproxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds one runtime API exchange when Client.Timeout is 0: the bash program's
// `timeout 2`, so a wedged proxy never stalls a switch or a watch tick for long.
const DefaultTimeout = 2 * time.Second

// MaxAnswerBytes caps a runtime API answer: `show stat` of one service is a few KiB, so more
// than this is not an answer to trust or to hold in memory.
const MaxAnswerBytes = 4 << 20

// Client speaks to the proxy's runtime API (the admin socket, <RunDir>/admin.sock), one
// command per connection as HAProxy answers it without its interactive prompt: the watch's
// counters, the canary's weights and the instant flip all go through it.
type Client struct {
	// Socket is the admin socket's path.
	Socket string
	// Timeout bounds the whole exchange, connect to the answer's end (0: DefaultTimeout).
	Timeout time.Duration
}

// Command sends cmd (several may be joined with "; ") and returns the whole answer: one
// connection, the command and a newline, then everything up to the proxy's close. An error
// means no complete answer (no socket, the time is up, more than MaxAnswerBytes).
func (c Client) Command(cmd string) (string, error) {
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	deadline := time.Now().Add(timeout)
	conn, err := net.DialTimeout("unix", c.Socket, timeout)
	if err != nil {
		return "", fmt.Errorf("the proxy's runtime API (%s): %w", c.Socket, err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return "", fmt.Errorf("the proxy's runtime API (%s): %w", c.Socket, err)
	}
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", fmt.Errorf("the proxy's runtime API (%s): sending %q: %w", c.Socket, firstWord(cmd), err)
	}
	out, err := io.ReadAll(io.LimitReader(conn, MaxAnswerBytes+1))
	if err != nil {
		return "", fmt.Errorf("the proxy's runtime API (%s): reading the answer to %q: %w", c.Socket, firstWord(cmd), err)
	}
	if len(out) > MaxAnswerBytes {
		return "", fmt.Errorf("the proxy's runtime API (%s): the answer to %q is over %d bytes", c.Socket, firstWord(cmd), MaxAnswerBytes)
	}
	return string(out), nil
}

// firstWord names a command in an error without repeating all of it.
func firstWord(cmd string) string {
	f := strings.Fields(cmd)
	switch {
	case len(f) == 0:
		return ""
	case len(f) == 1:
		return f[0]
	default:
		return f[0] + " " + f[1]
	}
}

// Counter is one instance server's counters since the proxy last loaded its config: what the
// error-rate watch judges.
type Counter struct {
	// Requests is req_tot plus econ: a refused connection is no request in req_tot.
	Requests int64
	// Errors is hrsp_5xx + econ + eresp: 5xx answers, refused connections, and servers that
	// hung up mid-answer.
	Errors int64
	// Sessions is scur: the sessions the server holds now (its in-flight requests), what a drain waits out.
	Sessions int64
	// RtimeMs is HAProxy's mean response time over the server's last 1024 answered requests
	// since the config loaded (rtime), in milliseconds: a request still unanswered is not in it.
	RtimeMs int64
}

var instanceRe = regexp.MustCompile(`^i[0-9]+$`)

// table is a `show stat` answer: its header's column indexes and its rows.
type table struct {
	col  map[string]int
	rows [][]string
}

func parseTable(csv string, need ...string) (table, error) {
	lines := strings.Split(csv, "\n")
	header := strings.TrimSuffix(lines[0], "\r")
	header = strings.TrimPrefix(header, "# ")
	t := table{col: map[string]int{}}
	for i, name := range splitCSV(header) {
		t.col[name] = i // a name listed twice: its last column, as awk's col[$i] = i had it
	}
	var missing []string
	for _, n := range need {
		if _, ok := t.col[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return table{}, fmt.Errorf("the proxy's `show stat` header lacks %s", strings.Join(missing, ", "))
	}
	for _, l := range lines[1:] {
		l = strings.TrimSuffix(l, "\r")
		if l == "" {
			continue
		}
		t.rows = append(t.rows, splitCSV(l))
	}
	return t, nil
}

// field is row's value of column name, "" when the row is short.
func (t table) field(row []string, name string) string {
	i := t.col[name]
	if i < len(row) {
		return row[i]
	}
	return ""
}

// num is a counter's value: an empty or non-numeric field counts 0.
func num(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// instances calls fn for every row of backend's instance servers (svname iPORT).
func (t table) instances(backend string, fn func(port int, row []string)) {
	for _, row := range t.rows {
		sv := t.field(row, "svname")
		if t.field(row, "pxname") != backend || !instanceRe.MatchString(sv) {
			continue
		}
		port, err := strconv.Atoi(sv[1:])
		if err != nil {
			continue
		}
		fn(port, row)
	}
}

// splitCSV splits one line of HAProxy's CSV: comma-separated, a field in double quotes may
// hold commas and doubled quotes. Never fails: a line that is not quite CSV still splits.
func splitCSV(line string) []string {
	var fields []string
	for {
		if strings.HasPrefix(line, `"`) {
			var b strings.Builder
			i := 1
			for i < len(line) {
				if line[i] == '"' {
					if i+1 < len(line) && line[i+1] == '"' {
						b.WriteByte('"')
						i += 2
						continue
					}
					i++
					break
				}
				b.WriteByte(line[i])
				i++
			}
			// Anything between the closing quote and the next comma belongs to the field.
			rest := line[i:]
			j := strings.IndexByte(rest, ',')
			if j < 0 {
				b.WriteString(rest)
				return append(fields, b.String())
			}
			b.WriteString(rest[:j])
			fields = append(fields, b.String())
			line = rest[j+1:]
			continue
		}
		j := strings.IndexByte(line, ',')
		if j < 0 {
			return append(fields, line)
		}
		fields = append(fields, line[:j])
		line = line[j+1:]
	}
}

// ParseStats reads the per-instance counters of backend out of a `show stat` answer, by the
// header's column names (their order differs between HAProxy versions). An error when the
// header lacks a counter the watch needs: no figures rather than wrong ones. The map is keyed
// by port (svname iPORT); a port listed twice keeps its last row.
func ParseStats(csv, backend string) (map[int]Counter, error) {
	t, err := parseTable(csv, "pxname", "svname", "req_tot", "econ", "eresp", "hrsp_5xx")
	if err != nil {
		return nil, err
	}
	counts := map[int]Counter{}
	t.instances(backend, func(port int, row []string) {
		econ := num(t.field(row, "econ"))
		counts[port] = Counter{
			Requests: num(t.field(row, "req_tot")) + econ,
			Errors:   num(t.field(row, "hrsp_5xx")) + econ + num(t.field(row, "eresp")),
			Sessions: num(t.field(row, "scur")),
			RtimeMs:  num(t.field(row, "rtime")),
		}
	})
	return counts, nil
}

// Counts is the proxy's counters of backend's instance servers now (proxy_counts).
func (c Client) Counts(backend string) (map[int]Counter, error) {
	out, err := c.Command("show stat")
	if err != nil {
		return nil, err
	}
	return ParseStats(out, backend)
}

// Server is one instance server as the running proxy sees it: whether a reloaded config (a
// canary's weights) or a flip has taken effect in the worker that serves.
type Server struct {
	Port   int
	Status string // UP, DOWN, MAINT, "no check", …
	Weight int
}

// ParseServers reads backend's instance servers out of a `show stat` answer, in its order;
// an error when the header lacks pxname, svname, status or weight.
func ParseServers(csv, backend string) ([]Server, error) {
	t, err := parseTable(csv, "pxname", "svname", "status", "weight")
	if err != nil {
		return nil, err
	}
	var servers []Server
	t.instances(backend, func(port int, row []string) {
		servers = append(servers, Server{Port: port, Status: t.field(row, "status"), Weight: int(num(t.field(row, "weight")))})
	})
	return servers, nil
}

// Servers is backend's instance servers as the running proxy has them now.
func (c Client) Servers(backend string) ([]Server, error) {
	out, err := c.Command("show stat")
	if err != nil {
		return nil, err
	}
	return ParseServers(out, backend)
}

// Flip sends every new request to port to and none to port from at once (proxy_flip): one
// connection, to made ready first so the backend is never without a server, in backend and in
// its HostBackend alike. The config still says otherwise until the caller rewrites it. HAProxy
// answers each accepted command with an empty line, so only a whitespace-only answer confirms
// all; any other answer is the error.
func (c Client) Flip(backend string, to, from int) error {
	host := HostBackend(backend)
	cmd := fmt.Sprintf("set server %s/i%d state ready; set server %s/i%d state maint; set server %s/i%d state ready; set server %s/i%d state maint",
		backend, to, backend, from, host, to, host, from)
	out, err := c.Command(cmd)
	if err != nil {
		return err
	}
	if strings.Trim(out, " \t\n\v\f\r") != "" {
		return fmt.Errorf("the proxy did not confirm the switch to i%d from i%d in %s and %s: %s", to, from, backend, host, oneLine(out, 200))
	}
	return nil
}

// oneLine is s as one printable line of at most n bytes.
func oneLine(s string, n int) string {
	b := []byte(strings.TrimSpace(s))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = ' '
		}
	}
	if len(b) > n {
		b = b[:n]
	}
	return string(b)
}

// WaitWeight waits until the running proxy shows server iPORT of backend with weight and not
// in MAINT (proxy_canary's wait): the reloaded config's new worker is the one serving. It
// polls every 100 ms and gives up (false) at deadline or when ctx is done.
func (c Client) WaitWeight(ctx context.Context, backend string, port, weight int, deadline time.Time) bool {
	for time.Now().Before(deadline) {
		if servers, err := c.Servers(backend); err == nil {
			for _, s := range servers {
				if s.Port == port && s.Weight == weight && s.Status != "MAINT" {
					return true
				}
			}
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
	return false
}

// InFlight are the ages of backend's requests in flight now, per instance port, from the
// runtime API's `show sess`: one line per stream, "be=<backend> srv=iPORT ... age=<time>". A
// request the server never answers is only here, never in the counters until a timeout ends it.
func (c Client) InFlight(backend string) (map[int][]time.Duration, error) {
	out, err := c.Command("show sess")
	if err != nil {
		return nil, err
	}
	return ParseSessions(out, backend), nil
}

// ParseSessions reads `show sess`: the age of every stream of backend on an instance server.
func ParseSessions(text, backend string) map[int][]time.Duration {
	ages := map[int][]time.Duration{}
	for _, l := range strings.Split(text, "\n") {
		var be, srv, age string
		for _, f := range strings.Fields(l) {
			if v, ok := strings.CutPrefix(f, "be="); ok {
				be = v
			} else if v, ok := strings.CutPrefix(f, "srv="); ok {
				srv = v
			} else if v, ok := strings.CutPrefix(f, "age="); ok {
				age = v
			}
		}
		if be != backend || !instanceRe.MatchString(srv) {
			continue
		}
		port, err1 := strconv.Atoi(srv[1:])
		d, err2 := parseAge(age)
		if err1 != nil || err2 != nil {
			continue
		}
		ages[port] = append(ages[port], d)
	}
	return ages
}

// parseAge reads HAProxy's human_time: "7s", "5m6s", "3h4m", "1d2h" (at most two units).
func parseAge(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("no age")
	}
	units := map[byte]time.Duration{'d': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute, 's': time.Second}
	var d time.Duration
	n := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			if n < 0 {
				n = 0
			}
			n = n*10 + int(c-'0')
			if n > 1<<20 {
				return 0, fmt.Errorf("age %q out of range", s)
			}
			continue
		}
		u, ok := units[c]
		if !ok || n < 0 {
			return 0, fmt.Errorf("age %q: not HAProxy's form", s)
		}
		d += time.Duration(n) * u
		n = -1
	}
	if n >= 0 {
		return 0, fmt.Errorf("age %q: a number without a unit", s)
	}
	return d, nil
}
