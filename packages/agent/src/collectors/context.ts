/**
 * What the collectors read, injected so tests can point them at fixture trees
 * and fake the parts of Node's os module that differ between machines.
 */
import { statfs as statfsCb } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Logger } from "@picluster/common";

/** The parts of Node's os module the collectors use. */
export interface OsFacts {
  hostname(): string;
  arch(): string;
  platform(): string;
  release(): string;
  type(): string;
  cpus(): os.CpuInfo[];
  totalmem(): number;
  freemem(): number;
  loadavg(): number[];
  uptime(): number;
  networkInterfaces(): NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

/** Size and use of one mounted filesystem. */
export interface DiskSpace {
  sizeBytes: number;
  usedBytes: number;
}

/** Sizes of the filesystem mounted at `mount`, a path on the node such as "/boot/firmware". */
export type StatFs = (mount: string) => Promise<DiskSpace>;

export interface CollectorContext {
  /** Filesystem root holding proc/, sys/, etc/, var/ ("/" on a real node). */
  root: string;
  /** Facts from Node's os module (off Linux the collectors fall back to these). */
  os: OsFacts;
  /**
   * Disk sizes; defaults to fs.statfs of root + mount. Tests inject recorded
   * sizes, because statfs inside a fixture tree measures the host's disk.
   */
  statfs?: StatFs;
  /** Where unreadable optional files are reported (at debug level). */
  log?: Logger;
}

/** The real os module. */
export function nodeOsFacts(): OsFacts {
  return {
    hostname: () => os.hostname(),
    arch: () => os.arch(),
    platform: () => os.platform(),
    release: () => os.release(),
    type: () => os.type(),
    cpus: () => os.cpus(),
    totalmem: () => os.totalmem(),
    freemem: () => os.freemem(),
    loadavg: () => os.loadavg(),
    uptime: () => os.uptime(),
    networkInterfaces: () => os.networkInterfaces(),
  };
}

/** Not node:fs/promises: see read.ts. */
const statfs = promisify(statfsCb);

/** fs.statfs of `root` + mount; "used" counts blocks not free, as df does. */
export function rootStatFs(root: string): StatFs {
  return async (mount) => {
    const s = await statfs(join(root, mount));
    return { sizeBytes: s.blocks * s.bsize, usedBytes: (s.blocks - s.bfree) * s.bsize };
  };
}
