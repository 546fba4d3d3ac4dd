#!/usr/bin/env python3
"""The tensor-parallel stage of scripts/gpu_score_checks.sh (issue 8, docs/multi_gpu.md §6): every golden fixture
scored with `hylora score --device cuda --tp 2` (the rank threads share the one GPU, collectives staged through the
host) against `--tp 1` on the same GPU and against the float64 references, base model and every adapter apart.
  float32, every fixture (all shard at tp 2), ep 1, and ep 2 for the MoE fixtures the CPU tests also run with whole
  experts per rank (Qwen3.5-MoE / Qwen3-MoE / Nemotron-H / DeepSeek-V3):
    max |Δ logprob| vs --tp 1 ≤ 1e-4 (or the fixture's own measured float32 error vs float64 when larger, as the
    CPU tests' tp_tolerance: limits.json chunked_37_in_64), and vs the references ≤ 1e-3.
  bfloat16, one fixture per architecture family: kl_v2 vs the references ≤ 2.5e-4 or ≤ HF's own bf16 kl_v2 on the
  fixture (hf_bf16_kl.json), the bar of the bf16 golden stage (gpu_score_compare.py).
The steps are the CPU tests' schedule (prefill chunks of 37 in steps of 64 rows: several sequences and adapters per
step, state carried across steps). Usage: gpu_tp_compare.py HYLORA_BINARY FIXTURES_DIR; one line per run, exit 1 on
any miss."""
import json, os, subprocess, sys, time

binary, fixtures = sys.argv[1], sys.argv[2]
way = ['--prefill-chunk', '37', '--max-batch-tokens', '64']
moe_ep = ('qwen3_5_moe', 'qwen3_moe', 'nemotron_h', 'deepseek_v3')  # fixture name prefixes also run with --ep 2
bf16_cases = ['qwen3_5_causal_lora', 'qwen3_moe_lora', 'nemotron_h_lora', 'deepseek_v3_lora']  # one per family
hf_path = os.path.join(fixtures, 'hf_bf16_kl.json')
hf_kl = {k: v.get('kl_v2') for k, v in json.load(open(hf_path))['fixtures'].items()} if os.path.exists(hf_path) else {}
fails = 0


def score(d, cfg, extra):
    cmd = [binary, 'score', '--model', os.path.join(d, 'model')]
    for an, ap in (cfg.get('adapters') or {}).items():
        cmd += ['--lora', f'{an}={os.path.join(d, ap)}']
    cmd += cfg.get('score_args', []) + ['--device', 'cuda'] + way + extra
    t0 = time.time()
    p = subprocess.run(cmd, stdin=open(os.path.join(d, 'requests.jsonl')), capture_output=True, text=True)
    rows = [json.loads(l) for l in p.stdout.splitlines() if l.strip()] if p.returncode == 0 else None
    return rows, p, time.time() - t0


def by_group(requests, a, b):
    """max |a − b| per adapter group ('base' or the adapter's name) over request-aligned logprob rows."""
    out = {}
    for q, x, y in zip(requests, a, b):
        g = q.get('lora') or 'base'
        if len(x['logprobs']) != len(y['logprobs']):
            return None
        out[g] = max([out.get(g, 0.0)] + [abs(u - v) for u, v in zip(x['logprobs'], y['logprobs'])])
    return out


def line(name, what, status, detail, secs):
    global fails
    fails += not status.startswith('ok')
    print(f'[gpu-tp] {name:28s} {what:24s} {detail} ({secs:.1f}s) {status}', flush=True)


for name in sorted(os.listdir(fixtures)):
    d = os.path.join(fixtures, name)
    if not (os.path.exists(os.path.join(d, 'case.json')) and os.path.exists(os.path.join(d, 'expected.jsonl'))):
        continue
    cfg = json.load(open(os.path.join(d, 'case.json')))
    requests = [json.loads(l) for l in open(os.path.join(d, 'requests.jsonl')) if l.strip()]
    expected = [json.loads(l) for l in open(os.path.join(d, 'expected.jsonl')) if l.strip()]
    lim = json.load(open(os.path.join(d, 'limits.json')))['schedules']['chunked_37_in_64']['measured']
    tol_tp = max(1e-4, lim)
    groups = ['base'] + sorted((cfg.get('adapters') or {}).keys())
    one, p1, s1 = score(d, cfg, ['--dtype', 'float32', '--tp', '1'])
    if one is None or len(one) != len(expected):
        line(name, 'float32 tp 1', f'FAIL rc={p1.returncode}: {p1.stderr.strip()[-300:]}', '', s1)
        continue
    for ep in ([1, 2] if name.startswith(moe_ep) else [1]):
        two, p2, s2 = score(d, cfg, ['--dtype', 'float32', '--tp', '2', '--ep', str(ep)])
        what = f'float32 tp 2 ep {ep}'
        if two is None or len(two) != len(expected) or any(x['id'] != y['id'] for x, y in zip(one, two)):
            line(name, what, f'FAIL rc={p2.returncode} rows={len(two or [])}: {p2.stderr.strip()[-300:]}', '', s2)
            continue
        vs_one, vs_ref = by_group(requests, two, one), by_group(requests, two, expected)
        if vs_one is None or vs_ref is None or set(vs_one) != set(groups):
            line(name, what, f'FAIL rows or groups differ (groups seen {sorted(vs_one or {})}, want {groups})', '', s2)
            continue
        worst_one, worst_ref = max(vs_one.values()), max(vs_ref.values())
        status = 'ok' if worst_one <= tol_tp and worst_ref <= 1e-3 else 'FAIL tolerance'
        detail = (f'vs tp 1 max|dlogprob| = {worst_one:.3g} (≤ {tol_tp:.3g}; ' +
                  ', '.join(f'{g} {vs_one[g]:.2g}' for g in groups) + f'), vs reference = {worst_ref:.3g} (≤ 1e-3)')
        line(name, what, status, detail, s2)
    if name in bf16_cases:
        two, p2, s2 = score(d, cfg, ['--dtype', 'bfloat16', '--tp', '2'])
        if two is None or len(two) != len(expected):
            line(name, 'bfloat16 tp 2', f'FAIL rc={p2.returncode}: {p2.stderr.strip()[-300:]}', '', s2)
            continue
        kl, n = 0.0, 0
        for g, e in zip(two, expected):
            for a, b in zip(g['logprobs'], e['logprobs']):
                kl += 0.5 * (a - b) ** 2
                n += 1
        kl /= max(n, 1)
        hf = hf_kl.get(name)
        status = 'ok' if kl <= 2.5e-4 else (f'ok (HF bf16: {hf:.3g})' if hf is not None and kl <= hf else
                                             'FAIL tolerance' + (f' (HF bf16: {hf:.3g})' if hf is not None else ''))
        line(name, 'bfloat16 tp 2', status, f'kl_v2 vs reference = {kl:.3g}', s2)
print(f'[gpu-tp] {fails} failing run(s)')
sys.exit(1 if fails else 0)
