#!/usr/bin/env python3
"""HF transformers + PEFT peer of `hylora bench` (docs/performance.md, "Peers, in the same run").

Builds the same config as hylora bench (the same truncated layers: pass the JSON hylora bench wrote, whose
"layers" line names them, or --layers N with the same rule) with random bf16 weights, attaches 0 / 1 / 8 PEFT LoRA
adapters (rank 16, every linear of the decoder layers, lora_alpha = 2r, B nonzero; mixed adapters in one batch
through PEFT's `adapter_names=`), and times decode at batch 1 and 32 / 64 over a 1k context and the prefill
workloads the same way as hylora: wall clock around one forward step (synchronised), warm-up + median. Writes JSON
with one row per workload, named as hylora bench names them, so bench/plot_bench.py can pair the rows.

Usage: python3 bench/hf_peer.py --config bench/configs/qwen3_5_4b.json --hylora-json r.json --out hf.json
"""
import argparse
import copy
import json
import statistics
import sys
import time


def truncated_config(config, kept):
    """The config with only the layers `kept` (original indices, ascending), as hylora's --layers writes it."""
    c = copy.deepcopy(config)
    text = c.get("text_config", c)
    n = len(kept)
    mt = c.get("model_type", "")
    if mt.startswith("qwen3_5"):
        types = text.get("layer_types") or [
            "full_attention" if (i + 1) % text.get("full_attention_interval", 4) == 0 else "linear_attention"
            for i in range(text["num_hidden_layers"])]
        text["layer_types"] = [types[i] for i in kept]
    elif mt == "nemotron_h":
        pattern = text["hybrid_override_pattern"]
        text["hybrid_override_pattern"] = "".join(pattern[i] for i in kept)
    elif mt in ("deepseek_v3", "kimi_k2"):
        fk = text.get("first_k_dense_replace", 0)
        text["first_k_dense_replace"] = sum(1 for i in kept if i < fk)
    text["num_hidden_layers"] = n
    return c


def kept_layers(hylora_json):
    """Original layer indices from hylora bench's "layers" field ("8 of 32 layers: 2 linear_attention, ...")."""
    desc = hylora_json["layers"]
    if desc.startswith("all"):
        return None
    return [int(part.strip().split(" ")[0]) for part in desc.split(":", 1)[1].split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--hylora-json", help="hylora bench --json output: same layers, same workload sizes")
    ap.add_argument("--out", required=True)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--prefill-long", type=int, default=8192)
    ap.add_argument("--prefill-seqs", type=int, default=16)
    ap.add_argument("--prefill-len", type=int, default=512)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--time-budget-s", type=float, default=240, help="stop starting workloads after this")
    args = ap.parse_args()

    import torch
    import transformers
    import peft
    from transformers import AutoConfig, AutoModelForCausalLM

    t_start = time.time()
    config = json.load(open(args.config))
    layers_desc = "all"
    if args.hylora_json:
        hj = json.load(open(args.hylora_json))
        kept = kept_layers(hj)
        if kept is not None:
            config = truncated_config(config, kept)
            layers_desc = hj["layers"]
    text = config.get("text_config", config)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    # The text model alone: a ConditionalGeneration config's text part builds the ForCausalLM class.
    cfg = AutoConfig.for_model(**text) if "text_config" in config else AutoConfig.for_model(**config)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    model.eval()
    # Random weights scaled like hylora's RandomWeights: N(0, 0.02) matrices (from_config's init already does
    # this for Linear/Embedding); norms and SSM parameters keep HF's initialisation, which is in their real ranges.
    vocab = text["vocab_size"]
    dev = "cuda"

    targets = sorted({name.split(".")[-1] for name, m in model.named_modules()
                      if isinstance(m, torch.nn.Linear) and ".layers." in name
                      and not name.endswith((".gate", "shared_expert_gate", "router"))})
    n_adapters = 8
    lcfg = peft.LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules=targets, init_lora_weights=False)
    pmodel = peft.get_peft_model(model, lcfg, adapter_name="a0")
    for i in range(1, n_adapters):
        pmodel.add_adapter(f"a{i}", lcfg)
    pmodel.eval()

    def timed(fn):
        for _ in range(args.warmup):
            fn()
        torch.cuda.synchronize()
        ms = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            ms.append((time.perf_counter() - t0) * 1000)
        return ms

    rows = []

    def record(name, kind, seqs, new, ctx, adapters, ms):
        rows.append({"name": name, "kind": kind, "seqs": seqs, "new_tokens": new, "context": ctx,
                     "adapters": adapters, "rank": args.rank if adapters else 0, "ms": ms,
                     "ms_median": statistics.median(ms),
                     "tokens_per_s": seqs * new / (statistics.median(ms) / 1000)})
        print(f"hf_peer: {name:24s} {statistics.median(ms):10.3f} ms/step", file=sys.stderr, flush=True)

    def adapter_kwargs(batch, adapters):
        """One adapter: make it the active one (plain PEFT forward). Several: PEFT's mixed-batch inference,
        `adapter_names` per row (PEFT refuses it inside MoE shared experts, whose input is flattened to tokens: that
        workload is then recorded as skipped, with PEFT's message)."""
        if adapters <= 1:
            pmodel.set_adapter("a0")
            return {}
        return {"adapter_names": [f"a{i % adapters}" for i in range(batch)]}

    @torch.no_grad()
    def decode(batch, adapters):
        ids = torch.randint(0, vocab, (batch, args.context), device=dev)
        kw = adapter_kwargs(batch, adapters)
        if adapters == 0:
            ctx = pmodel.disable_adapter()
            ctx.__enter__()
        try:
            out = pmodel(input_ids=ids, use_cache=True, **kw)  # the 1k prefill, not timed
            past = out.past_key_values
            step = torch.randint(0, vocab, (batch, 1), device=dev)

            def one():
                nonlocal past
                o = pmodel(input_ids=step, past_key_values=past, use_cache=True, **kw)
                past = o.past_key_values
            return timed(one)
        finally:
            if adapters == 0:
                ctx.__exit__(None, None, None)

    @torch.no_grad()
    def prefill(seqs, length, adapters):
        ids = torch.randint(0, vocab, (seqs, length), device=dev)
        kw = adapter_kwargs(seqs, adapters)
        if adapters == 0:
            with pmodel.disable_adapter():
                return timed(lambda: pmodel(input_ids=ids, use_cache=False, logits_to_keep=1))
        return timed(lambda: pmodel(input_ids=ids, use_cache=False, logits_to_keep=1, **kw))

    plan = [("decode", 1, 0), ("decode", 1, 1), ("decode", args.batch, 0), ("decode", args.batch, 1),
            ("decode", args.batch, 8),
            ("prefill", (1, args.prefill_long), 0), ("prefill", (1, args.prefill_long), 1),
            ("prefill", (args.prefill_seqs, args.prefill_len), 0),
            ("prefill", (args.prefill_seqs, args.prefill_len), min(8, args.prefill_seqs))]
    skipped = []
    for kind, size, adapters in plan:
        suffix = f"_a{adapters}" + (f"_r{args.rank}" if adapters else "")
        name = (f"decode_b{size}" if kind == "decode" else f"prefill_{size[0]}x{size[1]}") + suffix
        if time.time() - t_start > args.time_budget_s:
            skipped.append(name)
            continue
        try:
            if kind == "decode":
                record(name, kind, size, 1, args.context, adapters, decode(size, adapters))
            else:
                record(name, kind, size[0], size[1], 0, adapters, prefill(size[0], size[1], adapters))
        except torch.cuda.OutOfMemoryError as e:
            skipped.append(f"{name} (out of memory: {e})")
            torch.cuda.empty_cache()
        except ValueError as e:  # PEFT refusing a mixed-adapter batch (see adapter_kwargs)
            skipped.append(f"{name} (PEFT: {e})")

    result = {"tool": "hf+peft", "transformers": transformers.__version__, "peft": peft.__version__,
              "torch": torch.__version__, "card": torch.cuda.get_device_name(0), "dtype": args.dtype,
              "config": args.config, "layers": layers_desc, "lora_targets": targets, "warmup": args.warmup,
              "repeats": args.repeats, "skipped": skipped, "workloads": rows}
    json.dump(result, open(args.out, "w"), indent=2)


if __name__ == "__main__":
    main()
