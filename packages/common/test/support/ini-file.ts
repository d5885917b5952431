import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../src/config/load.js";

/** `text` as a config file in a scratch directory (removed after the test), and a loader for it. */
export function iniFile(t: { after(fn: () => void): void }, text: string) {
  const dir = mkdtempSync(join(tmpdir(), "picluster-ini-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "picluster.ini");
  writeFileSync(file, text);
  return {
    file,
    load: () =>
      loadConfig({ env: {}, configPath: file, paths: { cwd: dir, home: dir, uid: 1000 } }),
  };
}
