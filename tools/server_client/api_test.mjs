// End-to-end API test of a running `hylora serve` (issue 10 items 2, 3, 5, 7, 9): the official `openai` client for
// chat, completions, streaming, `base:adapter` and /v1/models; raw HTTP for /generate, adapter load/unload,
// /health, /metrics; every class of bad input gets its 4xx and the server keeps serving.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import OpenAI from "openai";
import { FIXTURES, get, metrics, post, rawRequest, startServer, waitIdle } from "./lib.mjs";

const CASE = path.join(FIXTURES, "qwen3_5_causal_lora");
const KEY = "test-key";
const AUTH = { authorization: `Bearer ${KEY}` };
const BASE = "qwen3_5_causal_lora";
let server, client, url, loraRoot;

before(async () => {
  // --lora-root holds a copy of one good and one broken adapter, and a symlink that points outside it.
  loraRoot = fs.mkdtempSync(path.join(os.tmpdir(), "hylora-lora-root-"));
  fs.cpSync(path.join(CASE, "adapters", "partial"), path.join(loraRoot, "partial"), { recursive: true });
  fs.cpSync(path.join(FIXTURES, "bad_adapters", "nan"), path.join(loraRoot, "broken"), { recursive: true });
  fs.symlinkSync(path.join(CASE, "adapters", "partial"), path.join(loraRoot, "escape"));
  server = await startServer(["--model", path.join(CASE, "model"), "--max-lora-rank", "16",
    "--lora", `full_r16=${path.join(CASE, "adapters", "full_r16")}`,
    "--lora", `mixed_r4=${path.join(CASE, "adapters", "mixed_r4")}`,
    "--max-loras-per-batch", "2", "--api-key", KEY, "--lora-root", loraRoot,
    "--max-body-bytes", "65536", "--body-timeout", "2", "--max-n", "4", "--max-new-tokens", "5000",
    "--max-prompt-tokens", "256"]);
  url = server.url;
  client = new OpenAI({ baseURL: url + "/v1", apiKey: KEY, maxRetries: 0 });
});

after(async () => {
  await server?.stop();
  fs.rmSync(loraRoot, { recursive: true, force: true });
});

test("one listening line on stdout, 127.0.0.1 by default", () => {
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(server.stdout(), `listening on ${url}\n`);
});

test("/v1/models lists the base model and its adapters with parent", async () => {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  assert.ok(ids.includes(BASE) && ids.includes("full_r16") && ids.includes("mixed_r4"), ids.join());
  assert.equal(list.data.find((m) => m.id === "full_r16").parent, BASE);
  assert.equal(list.data.find((m) => m.id === BASE).parent, null);
});

test("chat completion with model base:adapter; same as the adapter name; differs from the base", async () => {
  const ask = (model) => client.chat.completions.create({
    model, messages: [{ role: "user", content: "Say something." }], max_tokens: 12, temperature: 0,
    ignore_eos: true });
  const a = await ask(`${BASE}:full_r16`);
  const b = await ask("full_r16");
  const c = await ask(BASE);
  assert.equal(a.object, "chat.completion");
  assert.equal(a.choices[0].message.role, "assistant");
  assert.equal(typeof a.choices[0].message.content, "string");
  assert.equal(a.choices[0].finish_reason, "length");
  assert.equal(a.usage.completion_tokens, 12);
  assert.ok(a.usage.prompt_tokens > 5);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
});

test("chat streaming gives the same text as the whole answer; logprobs", async () => {
  const req = { model: "mixed_r4", messages: [{ role: "user", content: "Hello there" }], max_tokens: 10,
                temperature: 0, ignore_eos: true };
  const whole = await client.chat.completions.create({ ...req, logprobs: true, top_logprobs: 3 });
  const lp = whole.choices[0].logprobs.content;
  assert.equal(lp.length, 10);
  assert.equal(lp[0].top_logprobs.length, 3);
  assert.ok(lp.every((t) => t.logprob <= 0 && t.top_logprobs[0].logprob >= t.logprob));
  const stream = await client.chat.completions.create({ ...req, stream: true,
                                                         stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null, roles = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (c.delta?.role) roles++;
      text += c.delta?.content ?? "";
      finish = c.finish_reason ?? finish;
    }
  }
  assert.equal(roles, 1);
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, "length");
  assert.equal(usage.completion_tokens, 10);
});

test("completions: text and token-id prompts, stop strings, n, seeded sampling, streaming", async () => {
  const r = await client.completions.create({ model: BASE, prompt: "The cat", max_tokens: 8, temperature: 0,
                                              logprobs: 2, ignore_eos: true });
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices[0].logprobs.tokens.length, 8);
  assert.equal(Object.keys(r.choices[0].logprobs.top_logprobs[0]).length, 2);
  const ids = await client.completions.create({ model: BASE, prompt: [1, 2, 3, 4], max_tokens: 4, temperature: 0 });
  assert.equal(ids.usage.prompt_tokens, 4);
  // A stop string cuts the text before it.
  const full = r.choices[0].text;
  if (full.length > 3) {
    const stop = full.slice(2, 4);
    const cut = await client.completions.create({ model: BASE, prompt: "The cat", max_tokens: 8, temperature: 0,
                                                  stop: [stop], ignore_eos: true });
    assert.equal(cut.choices[0].text, full.slice(0, full.indexOf(stop)));
    assert.equal(cut.choices[0].finish_reason, "stop");
  }
  // n choices with a seed: reproducible, and the choices differ from each other.
  const sample = () => client.completions.create({ model: "full_r16", prompt: [5, 6, 7], max_tokens: 12, n: 3,
                                                   temperature: 1.0, top_p: 0.95, top_k: 50, min_p: 0.01, seed: 7,
                                                   ignore_eos: true });
  const s1 = await sample(), s2 = await sample();
  assert.equal(s1.choices.length, 3);
  assert.deepEqual(s1.choices.map((c) => c.text), s2.choices.map((c) => c.text));
  assert.ok(new Set(s1.choices.map((c) => c.text)).size > 1);
  const stream = await client.completions.create({ model: BASE, prompt: "The cat", max_tokens: 8, temperature: 0,
                                                   stream: true, ignore_eos: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
  assert.equal(text, full);
});

test("native /generate: SGLang's shape, lora_path, null = base, logprobs, streaming", async () => {
  const body = (lora) => ({ input_ids: [11, 22, 33, 44, 55], sampling_params: { temperature: 0, max_new_tokens: 24 },
                            lora_path: lora });
  const a = await post(url + "/generate", body("full_r16"), AUTH);
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.output_ids.length, a.json.meta_info.completion_tokens);
  assert.equal(a.json.meta_info.prompt_tokens, 5);
  assert.ok(["stop", "length"].includes(a.json.meta_info.finish_reason.type));
  assert.equal(typeof a.json.text, "string");
  const base = await post(url + "/generate", body(null), AUTH);
  assert.notDeepEqual(base.json.output_ids, a.json.output_ids);
  const lp = await post(url + "/generate", { text: "hello world", return_logprob: true, logprob_start_len: 0,
                                             top_logprobs_num: 2,
                                             sampling_params: { temperature: 0, max_new_tokens: 3, ignore_eos: true } },
                        AUTH);
  assert.equal(lp.status, 200, lp.text);
  assert.equal(lp.json.meta_info.input_token_logprobs.length, lp.json.meta_info.prompt_tokens);
  assert.equal(lp.json.meta_info.input_token_logprobs[0][0], null);
  assert.equal(lp.json.meta_info.output_token_logprobs.length, 3);
  assert.equal(lp.json.meta_info.output_top_logprobs[0].length, 2);
  const res = await fetch(url + "/generate", { method: "POST", headers: { ...AUTH, "content-type": "application/json" },
                                               body: JSON.stringify({ ...body("full_r16"), stream: true }) });
  const events = (await res.text()).split("\n\n").filter((e) => e.startsWith("data: "));
  assert.equal(events.at(-1), "data: [DONE]");
  const last = JSON.parse(events.at(-2).slice(6));
  assert.deepEqual(last.output_ids, a.json.output_ids);
  assert.equal(last.text, a.json.text);
});

test("adapters load and unload at runtime, only from under --lora-root", async () => {
  let r = await post(url + "/load_lora_adapter", { lora_name: "partial", lora_path: "partial" }, AUTH);
  assert.equal(r.status, 200, r.text);
  const models = await client.models.list();
  assert.ok(models.data.some((m) => m.id === "partial"));
  r = await post(url + "/generate", { input_ids: [1, 2, 3], sampling_params: { max_new_tokens: 4 },
                                      lora_path: "partial" }, AUTH);
  assert.equal(r.status, 200, r.text);
  r = await post(url + "/load_lora_adapter", { lora_name: "partial", lora_path: "partial" }, AUTH);
  assert.equal(r.status, 409, r.text);
  r = await post(url + "/unload_lora_adapter", { lora_name: "partial" }, AUTH);
  assert.equal(r.status, 200, r.text);
  r = await post(url + "/generate", { input_ids: [1, 2, 3], lora_path: "partial" }, AUTH);
  assert.equal(r.status, 404, r.text);
  // Pinned: keeps its slot; at most slots - 1 pinned.
  r = await post(url + "/load_lora_adapter", { lora_name: "pin1", lora_path: "partial", pinned: true }, AUTH);
  assert.equal(r.status, 200, r.text);
  r = await post(url + "/load_lora_adapter", { lora_name: "pin2", lora_path: "partial", pinned: true }, AUTH);
  assert.equal(r.status, 400, r.text);
  r = await post(url + "/generate", { input_ids: [1, 2, 3], sampling_params: { max_new_tokens: 4 },
                                      lora_path: "pin1" }, AUTH);
  assert.equal(r.status, 200, r.text);
  r = await post(url + "/unload_lora_adapter", { lora_name: "pin1" }, AUTH);
  assert.equal(r.status, 200, r.text);
});

test("bad input gets a clear 4xx and harms nobody else", async () => {
  const gen = (body, raw = false) => post(url + "/generate", raw ? body : JSON.stringify(body), AUTH);
  const chat = (body) => post(url + "/v1/chat/completions", body, AUTH);
  const cases = [
    ["malformed JSON", () => gen('{"input_ids": [1, 2', true), 400],
    ["not an object", () => gen("[1, 2, 3]", true), 400],
    // Otherwise a valid request: only the depth limit can refuse it.
    ["deep nesting", () => gen('{"input_ids": [1], "sampling_params": {"max_new_tokens": 1}, "x":' +
                               "[".repeat(5000) + "]".repeat(5000) + "}", true), 400,
     "request body: JSON nesting depth is over the limit of 64"],
    ["wrong type", () => chat({ model: BASE, messages: [{ role: "user", content: "x" }], max_tokens: "ten" }), 400],
    ["wrong type (messages)", () => chat({ model: BASE, messages: "hello" }), 400],
    ["unknown model", () => chat({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }), 404],
    ["unknown base:adapter", () => chat({ model: `${BASE}:nope`, messages: [{ role: "user", content: "x" }] }), 404],
    ["unknown adapter", () => gen({ input_ids: [1], lora_path: "nope" }), 404],
    ["prompt longer than the limit", () => gen({ input_ids: Array(300).fill(1) }), 400],
    ["token id outside the vocabulary", () => gen({ input_ids: [1, 999999] }), 400],
    ["negative temperature", () => gen({ input_ids: [1], sampling_params: { temperature: -1 } }), 400],
    ["top_p > 1", () => chat({ model: BASE, messages: [{ role: "user", content: "x" }], top_p: 1.5 }), 400],
    ["top_k 0", () => gen({ input_ids: [1], sampling_params: { top_k: 0 } }), 400],
    ["min_p < 0", () => gen({ input_ids: [1], sampling_params: { min_p: -0.1 } }), 400],
    ["n too large", () => chat({ model: BASE, messages: [{ role: "user", content: "x" }], n: 100 }), 400],
    ["max_tokens too large", () => chat({ model: BASE, messages: [{ role: "user", content: "x" }],
                                          max_tokens: 100001 }), 400],
    ["text and input_ids", () => gen({ text: "a", input_ids: [1] }), 400],
    ["unsupported sampling field", () => chat({ model: BASE, messages: [{ role: "user", content: "x" }],
                                                presence_penalty: 0.5 }), 400],
    ["unsupported sampling field (/generate)", () => gen({ input_ids: [1],
                                                           sampling_params: { repetition_penalty: 1.2 } }), 400],
    ["broken adapter", () => post(url + "/load_lora_adapter", { lora_name: "b", lora_path: "broken" }, AUTH), 400],
    ["adapter outside --lora-root", () => post(url + "/load_lora_adapter",
                                               { lora_name: "o", lora_path: path.join(CASE, "adapters", "partial") },
                                               AUTH), 403],
    ["adapter through ..", () => post(url + "/load_lora_adapter", { lora_name: "o", lora_path: "../" }, AUTH), 403],
    ["symlink escaping --lora-root", () => post(url + "/load_lora_adapter", { lora_name: "o", lora_path: "escape" },
                                                AUTH), 403],
    ["missing adapter dir", () => post(url + "/load_lora_adapter", { lora_name: "o", lora_path: "nope" }, AUTH), 400],
    ["unload unknown", () => post(url + "/unload_lora_adapter", { lora_name: "nope" }, AUTH), 404],
    ["body too large", () => gen({ input_ids: [1], pad: "x".repeat(100000) }), 413],
    ["no API key", () => post(url + "/generate", { input_ids: [1] }), 401],
    ["wrong API key", () => post(url + "/generate", { input_ids: [1] }, { authorization: "Bearer nope" }), 401],
    ["no API key on /health", () => get(url + "/health"), 401],
    ["unknown endpoint", () => get(url + "/v2/nothing", AUTH), 404],
  ];
  for (const [what, fn, status, says] of cases) {
    const r = await fn();
    assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
    if (status !== 413 || r.json) assert.ok(r.json?.error?.message, `${what}: no JSON error body: ${r.text}`);
    if (says) assert.ok(r.json.error.message.includes(says), `${what}: ${r.json.error.message}`);
  }
  assert.equal((await get(url + "/health", AUTH)).status, 200);
});

test("a client that sends its body slowly or never finishes is dropped; others are served meanwhile", async () => {
  const u = new URL(url);
  const head = `POST /generate HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${KEY}\r\n` +
               "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n";
  const never = rawRequest(url, [head, '{"input_ids": ['], { timeoutMs: 15000 });
  const trickle = rawRequest(url, [head, ...'{"input_ids": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]'.split("")],
                             { delayMs: 500, timeoutMs: 20000 });  // each gap well inside the read timeout
  const ok = await post(url + "/generate", { input_ids: [1, 2], sampling_params: { max_new_tokens: 2 } }, AUTH);
  assert.equal(ok.status, 200);
  const n = await never, t = await trickle;
  assert.ok(n.closedAfterMs < 10000, `never-finishing body held the connection ${n.closedAfterMs} ms`);
  assert.ok(t.closedAfterMs < 6000, `trickling body held the connection ${t.closedAfterMs} ms`);
  assert.match(t.data, /408/);
  assert.ok(!n.data.includes("200 OK") && !t.data.includes("200 OK"));
});

test("a client that disconnects mid-stream frees its slot and pages (/metrics)", async () => {
  const before = await metrics(url, AUTH);
  const ac = new AbortController();
  const res = await fetch(url + "/v1/completions", {
    method: "POST", signal: ac.signal, headers: { ...AUTH, "content-type": "application/json" },
    body: JSON.stringify({ model: BASE, prompt: [1, 2, 3], max_tokens: 5000, temperature: 0, ignore_eos: true,
                           stream: true }) });
  const reader = res.body.getReader();
  await reader.read();
  await reader.read();
  ac.abort();
  const m = await waitIdle(url, AUTH);
  assert.ok(m.hylora_client_disconnects_total > before.hylora_client_disconnects_total);
  assert.ok(m['hylora_requests_finished_total{reason="abort"}'] > before['hylora_requests_finished_total{reason="abort"}']);
  assert.equal(m.hylora_sequence_slots_free, before.hylora_sequence_slots_free);
  assert.ok(m.hylora_time_to_first_token_seconds_count > 0 && m.hylora_inter_token_latency_seconds_count > 0);
});

test("a model directory without a tokenizer serves token ids only (text null)", async () => {
  const s = await startServer(["--model", path.join(FIXTURES, "qwen3_causal", "model")]);
  try {
    const g = await post(s.url + "/generate", { input_ids: [1, 2, 3],
                                               sampling_params: { temperature: 0, max_new_tokens: 5 } });
    assert.equal(g.status, 200, g.text);
    assert.equal(g.json.text, null);
    assert.equal(g.json.output_ids.length, 5);
    const c = await post(s.url + "/v1/completions", { prompt: [1, 2, 3], max_tokens: 2 });
    assert.equal(c.status, 200, c.text);
    assert.equal((await post(s.url + "/v1/completions", { prompt: "text", max_tokens: 2 })).status, 400);
    assert.equal((await post(s.url + "/v1/chat/completions",
                             { messages: [{ role: "user", content: "x" }] })).status, 400);
    assert.equal((await post(s.url + "/generate", { text: "x" })).status, 400);
  } finally {
    await s.stop();
  }
});

test("--tp 2 (two rank threads): the same greedy tokens as one rank, base and adapters; runtime loads go to every rank", async () => {
  const s = await startServer(["--model", path.join(CASE, "model"), "--max-lora-rank", "16", "--tp", "2",
    "--lora", `full_r16=${path.join(CASE, "adapters", "full_r16")}`,
    "--lora", `mixed_r4=${path.join(CASE, "adapters", "mixed_r4")}`,
    "--max-loras-per-batch", "2", "--lora-root", loraRoot]);
  try {
    const body = (lora) => ({ input_ids: [5, 17, 2, 40, 9], lora_path: lora,
                              sampling_params: { temperature: 0, max_new_tokens: 8, ignore_eos: true } });
    const outputs = [];
    for (const lora of [null, "full_r16", "mixed_r4"]) {
      const one = await post(url + "/generate", body(lora), AUTH);
      const two = await post(s.url + "/generate", body(lora));
      assert.equal(one.status, 200, one.text);
      assert.equal(two.status, 200, two.text);
      assert.deepEqual(two.json.output_ids, one.json.output_ids, `adapter ${lora}`);
      outputs.push(JSON.stringify(two.json.output_ids));
    }
    assert.equal(new Set(outputs).size, 3, "base and the two adapters answer differently");
    // A runtime load reaches every rank; a broken adapter fails alone and the group serves on.
    let r = await post(s.url + "/load_lora_adapter", { lora_name: "partial", lora_path: "partial" });
    assert.equal(r.status, 200, r.text);
    r = await post(s.url + "/load_lora_adapter", { lora_name: "broken", lora_path: "broken" });
    assert.equal(r.status, 400, r.text);
    const a = await post(s.url + "/generate", body("partial"));
    assert.equal(a.status, 200, a.text);
    assert.equal(a.json.output_ids.length, 8);
  } finally {
    await s.stop();
  }
});
