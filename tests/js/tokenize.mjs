// Oracle for the tokenizer tests: transformers.js (npm @huggingface/transformers), loaded offline
// from a local Hugging Face folder. Reads a JSON array of texts from a file and prints, as JSON,
// {"with_special": [[ids]...], "without_special": [[ids]...]} — encode() with
// add_special_tokens true and false.
// usage: node tokenize.mjs MODEL_DIR TEXTS.json
import fs from "node:fs";
import path from "node:path";
import { AutoTokenizer, env } from "@huggingface/transformers";

env.allowRemoteModels = false;
env.allowLocalModels = true;
const [dir, textsPath] = process.argv.slice(2);
env.localModelPath = path.dirname(path.resolve(dir));
const tokenizer = await AutoTokenizer.from_pretrained(path.basename(path.resolve(dir)), { local_files_only: true });
const texts = JSON.parse(fs.readFileSync(textsPath, "utf8"));
const out = { with_special: [], without_special: [] };
for (const t of texts) {
  out.with_special.push(tokenizer.encode(t, { add_special_tokens: true }));
  out.without_special.push(tokenizer.encode(t, { add_special_tokens: false }));
}
process.stdout.write(JSON.stringify(out));
