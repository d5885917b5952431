// Writes docs/configuration.md from the schema table (run after a build).
import { writeFileSync } from "node:fs";
import { renderConfigDocs } from "@picluster/common";

writeFileSync(new URL("../docs/configuration.md", import.meta.url), renderConfigDocs());
console.log("wrote docs/configuration.md");
