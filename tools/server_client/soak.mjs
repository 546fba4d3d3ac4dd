// Soak test of `hylora serve` (not a CI test; scripts/soak_server.sh runs it): 256 concurrent streaming clients
// for DURATION seconds over the base model and 16 adapters (the 4 PEFT adapters of the Qwen3.5 fixture, each
// registered under 4 names) with 8 adapter slots, while one more adapter is loaded or unloaded every second.
// Every greedy answer must equal the same request's answer alone; 1 in 16 clients disconnects mid-stream. At the
// end the server must be idle with every page and slot back. Prints what it held.
import path from "node:path";
import OpenAI from "openai";
import { FIXTURES, metrics, post, startServer, waitIdle } from "./lib.mjs";

const DURATION = Number(process.env.SOAK_SECONDS ?? 60), CLIENTS = Number(process.env.SOAK_CLIENTS ?? 256);
const CASE = path.join(FIXTURES, "qwen3_5_causal_lora");
const DIRS = [path.join(CASE, "adapters", "full_r16"), path.join(CASE, "adapters", "mixed_r4"),
              path.join(CASE, "adapters", "partial"),
              path.join(FIXTURES, "qwen3_5_lora_spellings", "adapters", "peft_tied")];
const ADAPTERS = Array.from({ length: 16 }, (_, i) => ({ name: `a${i}`, dir: DIRS[i % 4] }));
const BASE = "qwen3_5_causal_lora";
const MODELS = [BASE, ...ADAPTERS.map((a) => a.name)];
const PROMPTS = 12, TOKENS = 24;

const server = await startServer(["--model", path.join(CASE, "model"), "--max-lora-rank", "16",
  ...ADAPTERS.flatMap((a) => ["--lora", `${a.name}=${a.dir}`]), "--max-loras-per-batch", "8",
  "--max-loaded-loras", "12", "--lora-root", FIXTURES, "--max-connections", "600"]);
const client = new OpenAI({ baseURL: server.url + "/v1", apiKey: "unused", maxRetries: 0, timeout: 600000 });
const prompt = (i) => Array.from({ length: 3 + (i * 7) % 60 }, (_, k) => (i * 131 + k * 71) % 500);
const req = (m, p) => ({ model: MODELS[m], prompt: prompt(p), max_tokens: TOKENS, temperature: 0, ignore_eos: true });

// References: adapters sharing a directory give the same answers, so one per (directory or base, prompt).
const ref = new Map();
for (let m = 0; m <= 4; ++m)
  for (let p = 0; p < PROMPTS; ++p) ref.set(`${m}/${p}`, (await client.completions.create(req(m, p))).choices[0].text);
const refOf = (m, p) => ref.get(`${m === 0 ? 0 : 1 + ((m - 1) % 4)}/${p}`);

const stats = { ok: 0, mismatch: 0, errors: 0, disconnects: 0, latencies: [], churnLoads: 0, churnUnloads: 0 };
const deadline = Date.now() + DURATION * 1000;
async function clientLoop(c) {
  for (let k = 0; Date.now() < deadline; ++k) {
    const m = (c * 7 + k * 3) % MODELS.length, p = (c + k) % PROMPTS;
    const t0 = Date.now();
    try {
      const stream = await client.completions.create({ ...req(m, p), stream: true });
      let text = "", n = 0;
      const disconnect = (c + k) % 16 === 0;
      for await (const chunk of stream) {
        text += chunk.choices[0]?.text ?? "";
        if (disconnect && ++n === 2) { stream.controller.abort(); break; }
      }
      if (disconnect) { ++stats.disconnects; continue; }
      stats.latencies.push(Date.now() - t0);
      if (text === refOf(m, p)) ++stats.ok; else ++stats.mismatch;
    } catch (e) {
      ++stats.errors;
      if (stats.errors < 5) console.error(`client ${c}: ${e.message}`);
    }
  }
}
const churner = (async () => {
  for (let k = 0; Date.now() < deadline; ++k) {
    const name = `churn${k % 4}`;
    const l = await post(server.url + "/load_lora_adapter", { lora_name: name, lora_path: path.relative(FIXTURES, DIRS[k % 4]) });
    if (l.status === 200) ++stats.churnLoads;
    await new Promise((r) => setTimeout(r, 500));
    const u = await post(server.url + "/unload_lora_adapter", { lora_name: name });
    if (u.status === 200) ++stats.churnUnloads;
    await new Promise((r) => setTimeout(r, 500));
  }
})();
const t0 = Date.now();
await Promise.all([...Array.from({ length: CLIENTS }, (_, c) => clientLoop(c)), churner]);
const secs = (Date.now() - t0) / 1000;
const m = await waitIdle(server.url, {}, 60000);
stats.latencies.sort((a, b) => a - b);
const q = (f) => stats.latencies[Math.floor(f * (stats.latencies.length - 1))] ?? 0;
console.log(JSON.stringify({
  clients: CLIENTS, seconds: secs, completed_equal_to_alone: stats.ok, mismatches: stats.mismatch,
  errors: stats.errors, disconnects: stats.disconnects, adapter_loads: stats.churnLoads,
  adapter_unloads: stats.churnUnloads, latency_ms_p50: q(0.5), latency_ms_p99: q(0.99),
  generated_tokens_per_s: Math.round(m.hylora_generation_tokens_total / secs),
  slot_loads: m.hylora_adapter_slot_loads_total, host_evictions: m.hylora_adapter_host_evictions_total,
  preemptions: m.hylora_preemptions_total, idle_after: true,
  pages_free: `${m.hylora_kv_pages_free}/${m.hylora_kv_pages_total}`, sequence_slots_free: m.hylora_sequence_slots_free,
}, null, 1));
await server.stop();
process.exit(stats.mismatch || stats.errors ? 1 : 0);
