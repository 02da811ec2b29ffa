// Builds the web console (console/) into console/dist/, the Worker's static assets (wrangler.toml [assets]):
// one minified bundle (Preact + the pages, esbuild), the page, its stylesheet and the _headers file that gives
// every console asset its Content-Security-Policy. Run by wrangler's [build] (dev, deploy), scripts/test.mjs
// and vitest.config.ts; reproducible from the sources, so the output is git-ignored.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "console");

export async function buildConsole() {
  const out = join(root, "dist");
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, "console"), { recursive: true });
  await build({
    entryPoints: [join(root, "src", "main.tsx")],
    outfile: join(out, "console", "app.js"),
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    jsx: "automatic",
    jsxImportSource: "preact",
    logLevel: "warning",
  });
  copyFileSync(join(root, "index.html"), join(out, "console", "index.html"));
  copyFileSync(join(root, "style.css"), join(out, "console", "style.css"));
  copyFileSync(join(root, "_headers"), join(out, "_headers"));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildConsole();
