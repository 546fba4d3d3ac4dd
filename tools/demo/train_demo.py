#!/usr/bin/env python3
"""Trains the demo model for `scripts/demo.sh` (issue 10 item 8) on the GPU machine: a tiny Qwen3.5-architecture
model (Qwen3_5ForCausalLM; Gated DeltaNet + gated attention layers) that answers a chat message holding a short
lowercase string by COPYING it, plus two PEFT LoRA adapters trained for two other tasks on the same prompts:
`reverse` (the string backwards) and `sort` (its letters in alphabetical order).

Tokenizer: the repo's tiny byte-level BPE (tests/fixtures/tokenizer_tiny) with its merges removed, so that every
byte is one token (a character-level task needs character-level tokens); same vocabulary ids, same chat template.

Writes OUT/{model,adapters/reverse,adapters/sort} in bf16 (HF save_pretrained / PEFT save_pretrained), and prints
the accuracy of each (greedy, on held-out strings) as HF computes it.

    python3 tools/demo/train_demo.py --out DIR [--device cuda]
"""
import argparse
import json
import os
import random
import shutil
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOK_SRC = os.path.join(REPO, "tests", "fixtures", "tokenizer_tiny")
ALPHABET = "abcdefghijklmnopqrstuvwxyz"
MIN_LEN, MAX_LEN = 3, 8
TASKS = {"copy": lambda s: s, "reverse": lambda s: s[::-1], "sort": lambda s: "".join(sorted(s))}
IM_START, IM_END, PAD = 510, 511, 509


def write_tokenizer(model_dir):
    tok = json.load(open(os.path.join(TOK_SRC, "tokenizer.json")))
    tok["model"]["merges"] = []
    with open(os.path.join(model_dir, "tokenizer.json"), "w") as f:
        json.dump(tok, f, ensure_ascii=False)
    shutil.copy(os.path.join(TOK_SRC, "tokenizer_config.json"), os.path.join(model_dir, "tokenizer_config.json"))
    vocab = tok["model"]["vocab"]
    # Byte-level symbols of lowercase letters and '\n' map to themselves / 'Ċ'.
    return {c: vocab[c] for c in ALPHABET + "user" + "assistant"}, vocab["Ċ"]


def encode_prompt(s, ids, nl):
    # <|im_start|>user\n{s}<|im_end|>\n<|im_start|>assistant\n  (the chat template, add_generation_prompt=True)
    return [IM_START] + [ids[c] for c in "user"] + [nl] + [ids[c] for c in s] + [IM_END, nl, IM_START] + \
        [ids[c] for c in "assistant"] + [nl]


def batch(task, n, ids, nl, rng, device):
    seqs, masks = [], []
    for _ in range(n):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(MIN_LEN, MAX_LEN)))
        p = encode_prompt(s, ids, nl)
        a = [ids[c] for c in TASKS[task](s)] + [IM_END]
        seqs.append(p + a)
        masks.append([0] * len(p) + [1] * len(a))
    T = max(len(x) for x in seqs)
    x = torch.full((n, T), PAD, dtype=torch.long)
    m = torch.zeros((n, T), dtype=torch.bool)
    for i, (s, mk) in enumerate(zip(seqs, masks)):
        x[i, :len(s)] = torch.tensor(s)
        m[i, :len(s)] = torch.tensor(mk, dtype=torch.bool)
    return x.to(device), m.to(device)


def train(model, params, task, steps, lr, ids, nl, rng, device, bs=256):
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    model.train()
    t0 = time.time()
    for step in range(steps):
        x, m = batch(task, bs, ids, nl, rng, device)
        logits = model(input_ids=x).logits.float()
        # position t predicts token t+1; loss only on the answer (and its <|im_end|>)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1][m[:, 1:]], x[:, 1:][m[:, 1:]])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % 200 == 0 or step == steps - 1:
            print(f"  [{task}] step {step} loss {loss.item():.4f} ({time.time() - t0:.0f}s)", flush=True)


@torch.no_grad()
def accuracy(model, task, ids, nl, device, n=100):
    model.eval()
    rng = random.Random(1234)
    inv = {v: k for k, v in ids.items()}
    good = 0
    for _ in range(n):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(MIN_LEN, MAX_LEN)))
        seq = encode_prompt(s, ids, nl)
        out = []
        for _ in range(MAX_LEN + 2):
            t = int(model(input_ids=torch.tensor([seq], device=device)).logits[0, -1].argmax())
            if t == IM_END:
                break
            out.append(inv.get(t, "?"))
            seq.append(t)
        good += "".join(out) == TASKS[task](s)
    return good / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--base-steps", type=int, default=1200)
    ap.add_argument("--lora-steps", type=int, default=1000)
    args = ap.parse_args()
    from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(0)
    rng = random.Random(0)
    mdir = os.path.join(args.out, "model")
    os.makedirs(mdir, exist_ok=True)
    ids, nl = write_tokenizer(mdir)
    cfg = Qwen3_5TextConfig(
        vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
        layer_types=["linear_attention", "full_attention", "linear_attention", "full_attention"],
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, linear_conv_kernel_dim=4,
        linear_key_head_dim=32, linear_value_head_dim=32, linear_num_key_heads=2, linear_num_value_heads=4,
        rms_norm_eps=1e-6, tie_word_embeddings=True, max_position_embeddings=256,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25,
                         "mrope_section": [2, 1, 1], "mrope_interleaved": True})
    cfg.eos_token_id, cfg.pad_token_id, cfg.bos_token_id = IM_END, PAD, None
    model = Qwen3_5ForCausalLM(cfg).to(args.device, torch.float32)
    print(f"params: {sum(p.numel() for p in model.parameters())}", flush=True)
    train(model, list(model.parameters()), "copy", args.base_steps, 3e-3, ids, nl, rng, args.device)
    print(f"base (copy) accuracy: {accuracy(model, 'copy', ids, nl, args.device):.3f}", flush=True)
    # Round to bf16 (the shipped dtype) before the adapters are trained, so they learn on the shipped weights.
    model.to(torch.bfloat16).save_pretrained(mdir, safe_serialization=True)
    model.to(torch.float32)
    with open(os.path.join(mdir, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": IM_END, "pad_token_id": PAD}, f)

    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "in_proj_qkv", "in_proj_z", "out_proj",
               "gate_proj", "up_proj", "down_proj"]
    for task in ("reverse", "sort"):
        base = Qwen3_5ForCausalLM.from_pretrained(mdir, dtype=torch.float32).to(args.device)
        pm = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets))
        params = [p for p in pm.parameters() if p.requires_grad]
        train(pm, params, task, args.lora_steps, 3e-3, ids, nl, rng, args.device)
        print(f"adapter {task} accuracy: {accuracy(pm, task, ids, nl, args.device):.3f}", flush=True)
        adir = os.path.join(args.out, "adapters", task)
        pm.to(torch.bfloat16)
        pm.save_pretrained(adir, safe_serialization=True)
    with torch.no_grad():
        m = Qwen3_5ForCausalLM.from_pretrained(mdir, dtype=torch.float32).to(args.device)
        print(f"shipped bf16 base (copy) accuracy: {accuracy(m, 'copy', ids, nl, args.device):.3f}", flush=True)


if __name__ == "__main__":
    main()
