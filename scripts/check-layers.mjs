// The layer check (CONTRIBUTING.md "Layers"): every import in src/ points down, never up, in the order
//   entry (src/index.ts, src/worker.ts)
//   → routes/, services.ts (the routers and the dependencies they receive)
//   → registry/, admin/, auth/ (handlers)
//   → storage/ (domain and storage)
//   → http/, oci/, model/ (wire vocabulary and the identity model), crypto/, config/
// Imports within one layer are allowed. Prints every upward import and their count; exits 1 unless it is 0.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const src = join(root, "src");

/** Layer of each top-level folder or file of src/ (higher imports lower). */
const LAYERS = {
  "index.ts": 4,
  "worker.ts": 4,
  "routes": 3,
  "services.ts": 3,
  "registry": 2,
  "admin": 2,
  "auth": 2,
  "storage": 1,
  "http": 0,
  "oci": 0,
  "model": 0,
  "crypto": 0,
  "config": 0,
};
const LAYER_NAMES = ["wire vocabulary, crypto, config", "domain and storage", "handlers", "routes", "entry"];

/** @param {string} dir @returns {string[]} */
function sourceFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** @param {string} file @returns {number} */
function layerOf(file) {
  const top = relative(src, file).split(sep)[0];
  if (!(top in LAYERS)) throw new Error(`${relative(root, file)}: src/${top} has no layer; add it to LAYERS in scripts/check-layers.mjs and to CONTRIBUTING.md`);
  return LAYERS[/** @type {keyof typeof LAYERS} */ (top)];
}

/** Relative specifiers of static imports, re-exports, dynamic imports and `declare module` augmentations. */
/** @param {string} text */
function importsOf(text) {
  /** @type {string[]} */
  const specifiers = [];
  const pattern = /(?:^|[\s;])(?:import|export)\s[^;]*?\sfrom\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|declare\s+module\s+["']([^"']+)["']/g;
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  for (const match of code.matchAll(pattern)) {
    const specifier = match[1] ?? match[2] ?? match[3] ?? match[4];
    if (specifier.startsWith(".")) specifiers.push(specifier);
  }
  return specifiers;
}

const upward = [];
let total = 0;
for (const file of sourceFiles(src)) {
  const from = layerOf(file);
  for (const specifier of importsOf(readFileSync(file, "utf8"))) {
    total += 1;
    const target = resolve(dirname(file), specifier.replace(/\.(js|ts)$/, "") + ".ts");
    if (!target.startsWith(src + sep)) {
      upward.push(`${relative(root, file)} imports ${specifier}: outside src/`);
      continue;
    }
    const to = layerOf(target);
    if (to > from) upward.push(`${relative(root, file)} (${LAYER_NAMES[from]}) imports ${specifier} (${LAYER_NAMES[to]})`);
  }
}
for (const line of upward) console.log(`upward import: ${line}`);
console.log(`layer check: ${total} imports in src/, ${upward.length} upward`);
process.exit(upward.length === 0 ? 0 : 1);
