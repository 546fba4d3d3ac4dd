// Shared by the server tests: start `hylora serve` on a free loopback port, small HTTP helpers.
import { spawn } from "node:child_process";
import net from "node:net";
import path from "node:path";

export const BINARY = process.env.HYLORA_BINARY ?? path.resolve("build/src/hylora");
export const REPO = process.env.HYLORA_REPO ?? path.resolve(".");
export const FIXTURES = path.join(REPO, "tests", "fixtures");

// Starts the server (`--port 0`: the OS picks a free port) and resolves once it printed its listening line.
export function startServer(args, { timeoutMs = 60000 } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(BINARY, ["serve", "--port", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "";
    const timer = setTimeout(() => { proc.kill("SIGKILL"); reject(new Error("server did not start: " + err)); },
                             timeoutMs);
    proc.stderr.on("data", (d) => { err += d; });
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/^listening on (http:\/\/[^\s]+)\n/);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1], proc, stderr: () => err, stdout: () => out,
          stop: () => new Promise((r) => { proc.once("exit", r); proc.kill("SIGTERM"); }),
        });
      }
    });
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`server exited (${code}): ${err}`)); });
  });
}

export async function post(url, body, headers = {}) {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers },
                                 body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

export async function get(url, headers = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text };
}

// Prometheus text -> {name{labels}: value}
export async function metrics(base, headers = {}) {
  const { text } = await get(base + "/metrics", headers);
  const m = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    m[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return m;
}

// Waits until the server has no request in flight and every page and slot is back.
export async function waitIdle(base, headers = {}, timeoutMs = 20000) {
  const t0 = Date.now();
  for (;;) {
    const m = await metrics(base, headers);
    if (m.hylora_running_requests === 0 && m.hylora_queue_waiting === 0 &&
        m.hylora_kv_pages_free === m.hylora_kv_pages_total) return m;
    if (Date.now() - t0 > timeoutMs) throw new Error("server not idle: " + JSON.stringify(m));
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Raw TCP: sends `chunks` (with delays) and resolves with {data, closedAfterMs} once the server closes.
export function rawRequest(url, chunks, { delayMs = 0, timeoutMs = 30000 } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const s = net.connect(Number(u.port), u.hostname);
    let data = "";
    const timer = setTimeout(() => { s.destroy(); reject(new Error("server never closed the connection")); },
                             timeoutMs);
    s.on("data", (d) => { data += d; });
    s.on("close", () => { clearTimeout(timer); resolve({ data, closedAfterMs: Date.now() - t0 }); });
    s.on("error", () => {});
    (async () => {
      for (const c of chunks) {
        if (s.destroyed) return;
        s.write(c);
        if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      }
    })();
  });
}
