/**
 * The node's id, stable across restarts: systemd's /etc/machine-id where it
 * exists, else a random id generated once and kept in the data directory.
 */

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { dataFiles, writePrivateFile } from "@picluster/common";

const ID_RE = /^[0-9a-f]{32}$/;

function readId(path: string): string | undefined {
  try {
    const text = readFileSync(path, "utf8").trim();
    return ID_RE.test(text) ? text : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** `root` is "/" on a real node; tests point it at a fixture tree. */
export function nodeId(root: string, dataDir: string): string {
  const machineId = readId(join(root, "etc", "machine-id"));
  if (machineId !== undefined) return machineId;
  const kept = dataFiles(dataDir).nodeId;
  const existing = readId(kept);
  if (existing !== undefined) return existing;
  const id = randomBytes(16).toString("hex");
  writePrivateFile(kept, `${id}\n`);
  return id;
}
