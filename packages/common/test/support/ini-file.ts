import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.js";
import { scratchDir } from "../../src/testing/scratch.js";

/** `text` as a config file in a scratch directory (removed after the test), and a loader for it. */
export function iniFile(t: { after(fn: () => void): void }, text: string) {
  const dir = scratchDir(t, "picluster-ini-");
  const file = join(dir, "picluster.ini");
  writeFileSync(file, text);
  return {
    file,
    load: () =>
      loadConfig({ env: {}, configPath: file, paths: { cwd: dir, home: dir, uid: 1000 } }),
  };
}
