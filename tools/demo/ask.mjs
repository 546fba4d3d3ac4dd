// scripts/demo.sh's client: sends the same chat message to the base model and to each adapter of a running
// `hylora serve` (plain fetch, no packages) and prints the answers side by side.
//   node tools/demo/ask.mjs URL MESSAGE MODEL...
const [url, message, ...models] = process.argv.slice(2);
for (const model of models) {
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: message }], temperature: 0, max_tokens: 16 }),
  });
  const body = await res.json();
  if (!res.ok) throw new Error(`${model}: HTTP ${res.status}: ${JSON.stringify(body)}`);
  console.log(`   ${model.padEnd(12)} -> ${JSON.stringify(body.choices[0].message.content)}`);
}
