package haproxy

import (
	"reflect"
	"slices"
	"testing"
)

func TestParseResponseTimes(t *testing.T) {
	cols := headerCols()
	csv := showStat(cols,
		map[string]string{"pxname": "complinist", "svname": "FRONTEND", "rtime": "99"},
		map[string]string{"pxname": "complinist", "svname": "i5001", "req_tot": "900", "rtime": "12"},
		map[string]string{"pxname": "complinist", "svname": "i5002", "req_tot": "0", "rtime": ""},
		map[string]string{"pxname": "complinist", "svname": "BACKEND", "rtime": "11"},
		map[string]string{"pxname": "other", "svname": "i5001", "rtime": "500"},
	)
	got, err := ParseResponseTimes(csv, "complinist")
	if want := map[int]int64{5001: 12, 5002: 0}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v %v, want %v", got, err, want)
	}
	without := slices.DeleteFunc(slices.Clone(cols), func(c string) bool { return c == "rtime" })
	if got, err := ParseResponseTimes(showStat(without, map[string]string{"pxname": "complinist", "svname": "i5001"}), "complinist"); err == nil {
		t.Fatalf("no error without rtime: %v", got)
	}
}

func TestStatsReadsCountersAndTimesFromOneAnswer(t *testing.T) {
	cols := headerCols()
	answer := showStat(cols, map[string]string{"pxname": "complinist", "svname": "i5001", "req_tot": "10", "hrsp_5xx": "1", "econ": "0", "eresp": "0", "rtime": "7"})
	api := startAPI(t, func(string) (string, bool) { return answer, true })
	counts, times, err := Client{Socket: api.path}.Stats("complinist")
	if err != nil || counts[5001] != (Counter{Requests: 10, Errors: 1}) || times[5001] != 7 {
		t.Fatalf("got %v %v %v", counts, times, err)
	}
	if got := api.commands(); !reflect.DeepEqual(got, []string{"show stat"}) {
		t.Fatalf("commands sent: %q, want one show stat", got)
	}
	// A proxy that reports no rtime still gives its counters.
	without := slices.DeleteFunc(slices.Clone(cols), func(c string) bool { return c == "rtime" })
	plain := showStat(without, map[string]string{"pxname": "complinist", "svname": "i5001", "req_tot": "3"})
	api = startAPI(t, func(string) (string, bool) { return plain, true })
	if counts, times, err := (Client{Socket: api.path}).Stats("complinist"); err != nil || counts[5001].Requests != 3 || times != nil {
		t.Fatalf("without rtime: %v %v %v", counts, times, err)
	}
}
