// Writes packages/common/src/protocol/wire-schemas.ts from the message
// schemas (run after a build; `npm run gen:wire` does both, then builds again).
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { renderWireSchemas } from "../packages/common/dist/src/protocol/wire-render.js";

const file = new URL("../packages/common/src/protocol/wire-schemas.ts", import.meta.url).pathname;
writeFileSync(file, renderWireSchemas());
execFileSync("npx", ["biome", "format", "--write", file], { stdio: "inherit" });
console.log("wrote packages/common/src/protocol/wire-schemas.ts");
