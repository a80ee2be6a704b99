"""Reports N security events about one user (POST /monitoring/events) over 16 keep-alive connections,
retrying a 503 (the detectors' queue full) after its Retry-After. Used by compliance_export.sh.

    python3 report_events.py BASE_URL API_KEY USER_ID N
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse

base, key, user, total = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
url = urllib.parse.urlparse(base)
lock = threading.Lock()
sent = 0


def worker() -> None:
    global sent
    conn = http.client.HTTPConnection(url.hostname, url.port)
    while True:
        with lock:
            if sent >= total:
                return
            n = sent
            sent += 1
        body = json.dumps({
            "event_type": "LOGIN_FAILURE",
            "user_id": user,
            "ip_address": f"198.51.100.{n % 250 + 1}",
            "user_agent": "load/1",
            "details": {"n": n},
            "source": "loadtest",
        })
        while True:
            conn.request("POST", "/monitoring/events", body, {"content-type": "application/json", "x-api-key": key})
            response = conn.getresponse()
            response.read()
            if response.status == 503:
                time.sleep(float(response.getheader("retry-after", "1")))
                continue
            if response.status >= 300:
                raise SystemExit(f"event {n}: HTTP {response.status}")
            break


threads = [threading.Thread(target=worker) for _ in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
