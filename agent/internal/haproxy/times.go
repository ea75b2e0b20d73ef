package haproxy

// ParseResponseTimes reads backend's instance servers' `rtime` out of a `show stat` answer:
// HAProxy's average response time in milliseconds of the server's last 1024 requests (0 before
// the first). Keyed by port like ParseStats; an error when the header lacks rtime.
func ParseResponseTimes(csv, backend string) (map[int]int64, error) {
	t, err := parseTable(csv, "pxname", "svname", "rtime")
	if err != nil {
		return nil, err
	}
	times := map[int]int64{}
	t.instances(backend, func(port int, row []string) { times[port] = num(t.field(row, "rtime")) })
	return times, nil
}

// Stats is one `show stat` read two ways: the counters (ParseStats) and the response times
// (ParseResponseTimes; nil when the proxy does not report them, which fails nothing).
func (c Client) Stats(backend string) (map[int]Counter, map[int]int64, error) {
	out, err := c.Command("show stat")
	if err != nil {
		return nil, nil, err
	}
	counts, err := ParseStats(out, backend)
	if err != nil {
		return nil, nil, err
	}
	times, _ := ParseResponseTimes(out, backend)
	return counts, times, nil
}
