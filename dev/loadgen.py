#!/usr/bin/env python3
"""Load generator run inside a test host, on loopback: N workers, a new TCP connection per
request, GET http://127.0.0.1:PORT/PATH until the stop file appears. Prints one JSON line:
requests ok / failed by kind, the versions that answered (any status), the longest gap
without a successful answer (the run's first and last stretch included), when each version
first answered and first answered 200 (seconds from start), and the start as Unix time so a
caller can place its own events on the same clock."""
import http.client, json, os, sys, threading, time

port = int(sys.argv[1]); path = sys.argv[2]; workers = int(sys.argv[3]); stop_file = sys.argv[4]
lock = threading.Lock()
ok = 0; failed = {}; versions = {}; first = {}; first_ok = {}; last_ok = None; gap = 0.0
started_at = time.time(); start = time.monotonic()

def worker():
    global ok, last_ok, gap
    while not os.path.exists(stop_file):
        t = time.monotonic()
        kind = None; version = None
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", path, headers={"Connection": "close"})
            r = c.getresponse(); body = r.read(); c.close()
            if r.status != 200:
                kind = "http-%d" % r.status
            try:
                version = json.loads(body).get("version")
            except Exception:
                version = None
        except ConnectionRefusedError: kind = "refused"
        except ConnectionResetError: kind = "reset"
        except Exception as e: kind = type(e).__name__
        now = time.monotonic()
        with lock:
            if version is not None:
                versions[version] = versions.get(version, 0) + 1
                first.setdefault(version, round(now - start, 3))
            if kind is None:
                ok += 1
                if version is not None: first_ok.setdefault(version, round(now - start, 3))
                gap = max(gap, now - (start if last_ok is None else last_ok))
                last_ok = now
            else:
                failed[kind] = failed.get(kind, 0) + 1

threads = [threading.Thread(target=worker) for _ in range(workers)]
for th in threads: th.start()
for th in threads: th.join()
end = time.monotonic()
gap = max(gap, end - (start if last_ok is None else last_ok))
print(json.dumps({"ok": ok, "failed": sum(failed.values()), "failedByKind": failed, "versions": versions,
                  "firstAnswered": first, "firstOk": first_ok, "longestGapSeconds": round(gap, 3),
                  "startedAt": round(started_at, 3), "seconds": round(end - start, 3)}))
