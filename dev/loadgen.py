#!/usr/bin/env python3
"""Load generator run inside a test host, on loopback: N workers, a new TCP connection per
request, GET http://127.0.0.1:PORT/PATH until the stop file appears. Prints one JSON line:
requests ok / failed by kind, the versions that answered, the longest gap without a
successful answer, and when each version first answered (seconds from start)."""
import http.client, json, os, sys, threading, time

port = int(sys.argv[1]); path = sys.argv[2]; workers = int(sys.argv[3]); stop_file = sys.argv[4]
lock = threading.Lock()
ok = 0; failed = {}; versions = {}; first = {}; last_ok = None; gap = 0.0; start = time.monotonic()

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
                if last_ok is not None: gap = max(gap, now - last_ok)
                last_ok = now
            else:
                failed[kind] = failed.get(kind, 0) + 1

threads = [threading.Thread(target=worker) for _ in range(workers)]
for th in threads: th.start()
for th in threads: th.join()
print(json.dumps({"ok": ok, "failed": sum(failed.values()), "failedByKind": failed, "versions": versions,
                  "firstAnswered": first, "longestGapSeconds": round(gap, 3), "seconds": round(time.monotonic() - start, 3)}))
