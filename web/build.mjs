// Builds the viewer: bundles web/src/viewer.js with three.js from node_modules (esbuild) and copies
// the page, into src/facerecon/server/static/ (committed, so `pip install` users need no node).
// Usage: node web/build.mjs [OUTDIR]   (`npm run build:web`; tests rebuild into a temporary folder
// and compare, so the committed files stay the build of this source).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] || join(here, "..", "src", "facerecon", "server", "static"));
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src", "viewer.js")],
  outfile: join(out, "viewer.js"),
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  legalComments: "eof",
  logLevel: "warning",
});
for (const name of ["index.html", "style.css"]) copyFileSync(join(here, "src", name), join(out, name));
