// Bundles the agent-only command into one file the primary serves to joining
// nodes (packages/cli/dist/agent-bundle.mjs), after `tsc -b`. esbuild is used
// because a node installs the agent from this single file, with no npm.
import { readFileSync } from "node:fs";
import { build } from "esbuild";

const root = new URL("..", import.meta.url).pathname;
const { version } = JSON.parse(readFileSync(`${root}packages/cli/package.json`, "utf8"));
await build({
  entryPoints: [`${root}packages/cli/dist/src/agent-bin.js`],
  outfile: `${root}packages/cli/dist/agent-bundle.mjs`,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minify: false,
  sourcemap: false,
  legalComments: "inline",
  logLevel: "warning",
  define: { PICLUSTER_BUNDLED_VERSION: JSON.stringify(version) },
  // CommonJS dependencies (pino) call require(); give the ESM bundle one.
  banner: {
    js: 'import { createRequire as __pcRequire } from "node:module"; const require = __pcRequire(import.meta.url);',
  },
});
