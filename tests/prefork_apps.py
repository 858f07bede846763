"""The WSGI app the pre-forked pool tests serve: it tells which worker answered and what it remembers."""

import json
import os
import sys
import time

served = 0  # requests this process has served: the state a worker carries from one request to the next


def application(environ, start_response):
    global served
    served += 1
    path = environ["PATH_INFO"]
    if path == "/slow":
        started = environ.get("QUERY_STRING")
        if started:
            open(started, "w").close()  # tells the test the request is in flight
        time.sleep(1.0)
    elif path.startswith("/sleep/"):
        time.sleep(float(path[7:]))
    elif path == "/exit":
        sys.exit(3)  # answered 500 like any app error; the worker serves on
    elif path == "/die":
        os._exit(4)
    data = {
        "pid": os.getpid(),
        "served": served,
        "run_once": environ["wsgi.run_once"],
        "multiprocess": environ["wsgi.multiprocess"],
        "body": "" if path == "/unread" else environ["wsgi.input"].read().decode("latin-1"),
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(data).encode()]
