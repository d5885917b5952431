// Bundles the agent-only command into one file the primary serves to joining
// nodes (packages/cli/dist/agent-bundle.cjs), after `tsc -b`. esbuild is used
// because a node installs the agent from this single file, with no npm.
import { readFileSync } from "node:fs";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(`${root}packages/cli/package.json`, "utf8"));
await build({
  entryPoints: [`${root}packages/cli/dist/src/agent-bin.js`],
  outfile: `${root}packages/cli/dist/agent-bundle.cjs`,
  bundle: true,
  platform: "node",
  // CommonJS and minified, to keep the agent's RSS down: an ESM entry costs
  // ~1.9 MiB (Node's ESM loader) and the unminified 550 KB source ~1 MiB
  // more (bench/README.md). The source map beside it (not served) decodes
  // a stack trace from a node: node --enable-source-maps, or any map tool.
  format: "cjs",
  target: "node20",
  minify: true,
  sourcemap: "external",
  legalComments: "inline",
  logLevel: "warning",
  define: {
    PICLUSTER_BUNDLED_VERSION: JSON.stringify(version),
    // import.meta.url in CommonJS: this file's own URL.
    "import.meta.url": "__pcImportMetaUrl",
  },
  banner: { js: 'var __pcImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
});

// ASCII only: Node reads the bundle into one string, and a single character
// outside Latin-1 makes all of it two bytes a character, 0.26 MiB more of
// the agent's heap (a `°` in a regular expression once did; esbuild escapes
// strings but not regular expressions).
const out = readFileSync(`${root}packages/cli/dist/agent-bundle.cjs`);
const wide = out.findIndex((byte) => byte > 0x7f);
if (wide >= 0) {
  const near = out.subarray(Math.max(0, wide - 40), wide + 10).toString("utf8");
  console.error(
    `agent-bundle.cjs is not ASCII: byte ${wide}, near "${near}"; write the character as an escape (\\u....) in the source`,
  );
  process.exit(1);
}
