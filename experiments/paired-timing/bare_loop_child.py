"""A bare timing loop, deliberately not slimbench's worker: load the runner, then for each stdin line
"START N" time N batch-1 `runner.predict` calls with a plain perf_counter loop (GC on, no
protocol beyond one JSON list per line). Used by evidence.py to check the harness against it."""

import json
import sys
import time

from slimbench.runtimes.runners import open_runner

runner = open_runner(sys.argv[1], threads=int(sys.argv[2]))
with open(sys.argv[3]) as f:
    texts = json.load(f)
runner.predict(texts[:1])
print("ready", flush=True)
for line in sys.stdin:
    start, n = map(int, line.split())
    out = []
    for i in range(n):
        text = texts[(start + i) % len(texts)]
        t = time.perf_counter()
        runner.predict([text])
        out.append(time.perf_counter() - t)
    print(json.dumps(out), flush=True)
