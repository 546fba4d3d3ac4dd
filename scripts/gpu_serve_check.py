#!/usr/bin/env python3
"""`hylora serve --device cuda` on a golden fixture: greedy /generate of every generate.jsonl prompt (with its adapter)
equals HF + PEFT's greedy tokens up to the first step whose HF top-1/top-2 margin is below the dtype's bar (a step
that close may flip under rounding; fp32: 1e-3, bf16: 5e-2), the way tests/server/generation_reference_test.cpp does
on the CPU; and seeded draws on the GPU are the same alone, repeated and inside a batch. Usage: gpu_serve_check.py HYLORA_BINARY FIXTURE_DIR DTYPE [DTYPE...]; exits non-zero on a mismatch."""
import concurrent.futures, json, os, subprocess, sys, urllib.request

binary, case, dtypes = sys.argv[1], sys.argv[2], sys.argv[3:] or ['float32']
cfg = json.load(open(os.path.join(case, 'case.json')))
prompts = [json.loads(l) for l in open(os.path.join(case, 'generate.jsonl')) if l.strip()]
fails = 0
for dtype in dtypes:
    cmd = [binary, 'serve', '--model', os.path.join(case, 'model'), '--port', '0', '--device', 'cuda',
           '--dtype', dtype] + cfg.get('score_args', [])
    for an, ap in (cfg.get('adapters') or {}).items():
        cmd += ['--lora', f'{an}={os.path.join(case, ap)}']
    srv = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    for line in srv.stdout:
        if line.startswith('listening on '):
            url = line.split()[-1]
            break
        print('[gpu-serve] server:', line.rstrip())
    if url is None:
        print(f'[gpu-serve] {dtype}: FAIL the server did not start (rc={srv.wait()})')
        fails += 1
        continue
    bar = 1e-3 if dtype == 'float32' else 5e-2
    compared = steps = bad = 0
    for p in prompts:
        body = {'input_ids': p['input_ids'], 'lora_path': p.get('lora'),
                'sampling_params': {'max_new_tokens': len(p['output_ids']), 'temperature': 0.0}}
        req = urllib.request.Request(url + '/generate', json.dumps(body).encode(), {'Content-Type': 'application/json'})
        got = json.load(urllib.request.urlopen(req, timeout=120))['output_ids']
        for i, (g, e) in enumerate(zip(got, p['output_ids'])):
            if p['margins'][i] <= bar:
                break
            if g != e:
                bad += 1
                print(f'[gpu-serve] {dtype} {p["id"]}: step {i} got {g}, HF {e} (margin {p["margins"][i]:.3g})')
                break
            compared += 1
        steps += len(p['output_ids'])
    # Seeded draws on the GPU (ops::sample_on_device): a pure function of (seed, position), so the same request gives
    # the same tokens alone, again, and inside a batch of 8 concurrent requests with other seeds.
    p0 = prompts[0]

    def sampled(seed):
        body = {'input_ids': p0['input_ids'], 'lora_path': p0.get('lora'),
                'sampling_params': {'max_new_tokens': 12, 'temperature': 0.9, 'top_p': 0.95, 'top_k': 40,
                                    'seed': seed, 'ignore_eos': True}}
        req = urllib.request.Request(url + '/generate', json.dumps(body).encode(), {'Content-Type': 'application/json'})
        return json.load(urllib.request.urlopen(req, timeout=120))['output_ids']
    alone = sampled(1234)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        batch = list(pool.map(sampled, [1234] + list(range(1, 8))))
    seeded_ok = alone == sampled(1234) == batch[0] and len(alone) == 12 and len({tuple(b) for b in batch}) > 1
    bad += not seeded_ok
    print(f'[gpu-serve] {os.path.basename(case)} {dtype}: seeded draws alone / again / in a batch of 8: '
          f'{alone} / {batch[0]}: {"ok" if seeded_ok else "FAIL"}', flush=True)
    srv.terminate()
    srv.wait()
    fails += bad > 0
    print(f'[gpu-serve] {os.path.basename(case)} {dtype}: {len(prompts)} prompts, {compared}/{steps} greedy steps '
          f'compared (margin > {bar}), {bad} mismatching: {"ok" if bad == 0 else "FAIL"}', flush=True)
sys.exit(1 if fails else 0)
