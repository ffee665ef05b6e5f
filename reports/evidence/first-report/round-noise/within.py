import json, sys, math
import numpy as np
d = json.load(open(sys.argv[1]))
for _b in d['benchmarks']:  # files written since the compact format keep round indices as runs
    _ei = _b['extra_info']
    for _k, _pairs in _ei.pop('samples_runs', {}).items():
        _ei['samples'][_k] = [float(v) for v, c in _pairs for _ in range(c)]
for b in d['benchmarks']:
    if not b['name'].startswith('test_latency['): continue
    ei = b['extra_info']; s = b['stats']['data']; idx = ei['samples']['latency_round']
    per = {}
    for x, i in zip(s, idx): per.setdefault(int(i), []).append(x)
    meds = np.array([np.median(v) for v in per.values()])
    iq = [ (np.percentile(v,75)-np.percentile(v,25))/np.median(v) for v in per.values()]
    n = np.median([len(v) for v in per.values()])
    lm = np.log(meds)
    # predicted sd of a block median from within-block spread: 1.253*sigma/sqrt(n), sigma~IQR/1.35
    pred = 1.253*np.median(iq)/1.349/math.sqrt(n)
    print(f"{ei['variant']:24s} n/block {n:5.0f} within-block IQR/med {np.median(iq):.3f} -> predicted sd(log med) {pred:.3f}; observed MAD*1.48 of log block medians {1.4826*np.median(np.abs(lm-np.median(lm))):.3f}")
