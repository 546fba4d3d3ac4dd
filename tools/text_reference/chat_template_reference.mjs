// Reference chat-template renderings from @huggingface/jinja (the JS Jinja that mirrors transformers'
// apply_chat_template environment: trim_blocks, lstrip_blocks, HF's tojson).
//   node chat_template_reference.mjs TEMPLATE REQUESTS.jsonl  ->  {"text": "..."} or {"error": "..."} per line
// TEMPLATE is a tokenizer_config.json (its chat_template and special tokens) or a plain .jinja file.
// Variables as transformers passes them: special tokens, tools=None, documents=None,
// add_generation_prompt=False, then every field of the request.
import { readFileSync } from "node:fs";
import { Template } from "@huggingface/jinja";

const [templateFile, requestsFile] = process.argv.slice(2);
if (!templateFile || !requestsFile) {
  console.error("usage: node chat_template_reference.mjs TEMPLATE REQUESTS.jsonl");
  process.exit(2);
}
let source;
const specials = {};
if (templateFile.endsWith(".json")) {
  const config = JSON.parse(readFileSync(templateFile, "utf8"));
  source = config.chat_template;
  for (const key of ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"]) {
    const t = config[key];
    if (typeof t === "string") specials[key] = t;
    else if (t && typeof t === "object" && typeof t.content === "string") specials[key] = t.content;
  }
  if (Array.isArray(config.additional_special_tokens)) specials.additional_special_tokens = config.additional_special_tokens;
} else {
  source = readFileSync(templateFile, "utf8");
}
const template = new Template(source);
const out = [];
for (const line of readFileSync(requestsFile, "utf8").split("\n")) {
  if (line.trim() === "") continue;
  const request = JSON.parse(line);
  try {
    const text = template.render({ ...specials, tools: null, documents: null, add_generation_prompt: false, ...request });
    out.push(JSON.stringify({ text }));
  } catch (e) {
    out.push(JSON.stringify({ error: String(e.message ?? e) }));
  }
}
process.stdout.write(out.join("\n") + (out.length ? "\n" : ""));
