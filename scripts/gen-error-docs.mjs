// Writes docs/errors.md from the error catalogue (run after a build).
import { writeFileSync } from "node:fs";
import { renderErrorDocs } from "@picluster/common";

writeFileSync(new URL("../docs/errors.md", import.meta.url), renderErrorDocs());
console.log("wrote docs/errors.md");
