#!/usr/bin/env python3
"""Load generator run inside a test host, on loopback: N workers, a new TCP connection per
request, GET http://127.0.0.1:PORT/PATH until the stop file appears (or, with a fifth argument
ADDRESS, from outside the host: GET http://ADDRESS:PORT/PATH, as users' requests arrive). Prints one JSON line:
requests ok / failed by kind, the versions that answered (any status), the longest gap
without a successful answer (the run's first and last stretch included), when each version
first answered and first answered 200 (seconds from start), and the start as Unix time so a
caller can place its own events on the same clock.

Also, for pages that are not JSON (the app's `/` is HTML): `served`, per version read from the
JSON body's "version" or else from the Server header (CompliNist/<version>), the answers (any
status), the failed ones, and the Unix times of its first and last answer and first failed
one; `firstFailedAt`, the Unix time of the run's first failed request; and `perSecond`, one
entry per whole second since the start (entry i: requests completed in [i, i+1) s) with ok,
failed, failed by kind and answers per version (as `served` reads them). Every time is a
request's completion, as startedAt plus the monotonic clock's offset from the start."""
import http.client, json, os, re, sys, threading, time

port = int(sys.argv[1]); path = sys.argv[2]; workers = int(sys.argv[3]); stop_file = sys.argv[4]
target = sys.argv[5] if len(sys.argv) > 5 else "127.0.0.1"
lock = threading.Lock()
ok = 0; failed = {}; versions = {}; first = {}; first_ok = {}; last_ok = None; gap = 0.0
served = {}; first_failed_at = None; per_second = []
started_at = time.time(); start = time.monotonic()
SERVER = re.compile(r"CompliNist/(\S+)")

def worker():
    global ok, last_ok, gap, first_failed_at
    while not os.path.exists(stop_file):
        t = time.monotonic()
        kind = None; version = None; server_version = None
        try:
            c = http.client.HTTPConnection(target, port, timeout=5)
            c.request("GET", path, headers={"Connection": "close"})
            r = c.getresponse(); body = r.read(); c.close()
            if r.status != 200:
                kind = "http-%d" % r.status
            m = SERVER.search(r.getheader("Server") or "")
            server_version = m.group(1) if m else None
            try:
                version = json.loads(body).get("version")
            except Exception:
                version = None
        except ConnectionRefusedError: kind = "refused"
        except ConnectionResetError: kind = "reset"
        except Exception as e: kind = type(e).__name__
        now = time.monotonic()
        at = round(started_at + (now - start), 3)
        by = version if version is not None else server_version
        with lock:
            second = int(now - start)
            while len(per_second) <= second: per_second.append({"ok": 0, "failed": 0, "failedByKind": {}, "versions": {}})
            bucket = per_second[second]
            if by is not None:
                s = served.setdefault(by, {"answered": 0, "failed": 0, "firstAt": at, "lastAt": at, "firstFailedAt": None})
                s["answered"] += 1; s["lastAt"] = at
                bucket["versions"][by] = bucket["versions"].get(by, 0) + 1
                if kind is not None:
                    s["failed"] += 1
                    if s["firstFailedAt"] is None: s["firstFailedAt"] = at
            if version is not None:
                versions[version] = versions.get(version, 0) + 1
                first.setdefault(version, round(now - start, 3))
            if kind is None:
                ok += 1
                bucket["ok"] += 1
                if version is not None: first_ok.setdefault(version, round(now - start, 3))
                gap = max(gap, now - (start if last_ok is None else last_ok))
                last_ok = now
            else:
                failed[kind] = failed.get(kind, 0) + 1
                bucket["failed"] += 1
                bucket["failedByKind"][kind] = bucket["failedByKind"].get(kind, 0) + 1
                if first_failed_at is None: first_failed_at = at

threads = [threading.Thread(target=worker) for _ in range(workers)]
for th in threads: th.start()
for th in threads: th.join()
end = time.monotonic()
gap = max(gap, end - (start if last_ok is None else last_ok))
print(json.dumps({"ok": ok, "failed": sum(failed.values()), "failedByKind": failed, "versions": versions,
                  "firstAnswered": first, "firstOk": first_ok, "longestGapSeconds": round(gap, 3),
                  "startedAt": round(started_at, 3), "seconds": round(end - start, 3),
                  "served": served, "firstFailedAt": first_failed_at, "perSecond": per_second}))
