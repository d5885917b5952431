/**
 * Disks: real filesystems from proc/mounts with their sizes (statfs), and
 * read/write byte counters of whole block devices from proc/diskstats.
 */
import { describeError } from "@picluster/common";
import { type CollectorContext, type DiskSpace, rootStatFs } from "./context.js";

export const MOUNTS = "proc/mounts";
export const DISKSTATS = "proc/diskstats";

/** A statfs that has not answered by then (a dead NFS server) is skipped this time. */
export const STATFS_TIMEOUT_MS = 2_000;
const MAX_DISKS = 256;

/**
 * Filesystems that hold data worth watching: on-disk ones, FUSE block ones
 * (ntfs-3g, exfat-fuse on USB drives) and network shares. Everything else in
 * proc/mounts (tmpfs, proc, sysfs, cgroup, overlay, squashfs, autofs, other
 * fuse.* such as sshfs, …) is virtual, read-only images or a view of another
 * filesystem.
 */
const REAL_FS = new Set([
  "ext2",
  "ext3",
  "ext4",
  "xfs",
  "btrfs",
  "bcachefs",
  "f2fs",
  "zfs",
  "jfs",
  "reiserfs",
  "vfat",
  "msdos",
  "exfat",
  "ntfs",
  "ntfs3",
  "fuseblk",
  "hfsplus",
  "nfs",
  "nfs4",
  "cifs",
  "smb3",
  "ceph",
]);

export interface Mount {
  source: string;
  mount: string;
  fs: string;
}

/** proc/mounts escapes space, tab, newline and backslash as octal (\040). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) =>
    String.fromCharCode(Number.parseInt(octal, 8)),
  );
}

/**
 * Real filesystems, one per mount point (a later mount hides an earlier one
 * at the same point) and one per source (bind mounts and repeated btrfs
 * subvolume mounts of one device would report the same space twice; the
 * first, usually the original mount, is kept).
 */
export function parseMounts(text: string): Mount[] {
  const byMount = new Map<string, Mount>();
  for (const line of text.split("\n")) {
    const [source, mount, fs] = line.split(" ");
    if (source === undefined || mount === undefined || fs === undefined) continue;
    if (!REAL_FS.has(fs)) continue;
    const entry = { source: unescapeMountField(source), mount: unescapeMountField(mount), fs };
    byMount.delete(entry.mount);
    byMount.set(entry.mount, entry);
  }
  const seenSources = new Set<string>();
  const mounts: Mount[] = [];
  for (const m of byMount.values()) {
    if (seenSources.has(m.source)) continue;
    seenSources.add(m.source);
    mounts.push(m);
  }
  return mounts.slice(0, MAX_DISKS);
}

/**
 * statfs of each mount, with a deadline. A mount that fails (EACCES, gone
 * since proc/mounts was read) or is still answering a call from an earlier
 * sample (`pending`: a hung NFS server ties up one libuv thread per call, so
 * we never start a second) is left out of the result.
 */
export async function readDiskSpace(
  ctx: CollectorContext,
  mounts: Mount[],
  pending: Set<string>,
): Promise<Array<Mount & DiskSpace>> {
  const statfs = ctx.statfs ?? rootStatFs(ctx.root);
  const results = await Promise.all(
    mounts.map(async (m) => {
      if (pending.has(m.mount)) return undefined;
      const space = await statfsWithDeadline(ctx, () => statfs(m.mount), m.mount, pending);
      return space === undefined ? undefined : { ...m, ...space };
    }),
  );
  return results.filter((r): r is Mount & DiskSpace => r !== undefined);
}

async function statfsWithDeadline(
  ctx: CollectorContext,
  call: () => Promise<DiskSpace>,
  mount: string,
  pending: Set<string>,
): Promise<DiskSpace | undefined> {
  pending.add(mount);
  // An injected statfs that throws synchronously still ends up in the catch below.
  const op = new Promise<DiskSpace>((resolve) => resolve(call()));
  const settled = () => pending.delete(mount);
  void op.then(settled, settled);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(resolve, STATFS_TIMEOUT_MS, "timeout");
  });
  try {
    const result = await Promise.race([op, deadline]);
    if (result === "timeout") {
      ctx.log?.warn("statfs timed out, disk left out until it answers", {
        mount,
        timeoutMs: STATFS_TIMEOUT_MS,
      });
      return undefined;
    }
    const sizeBytes = Math.max(0, Math.floor(result.sizeBytes));
    const usedBytes = Math.min(sizeBytes, Math.max(0, Math.floor(result.usedBytes)));
    return { sizeBytes, usedBytes };
  } catch (err) {
    ctx.log?.debug("statfs failed, disk left out", { mount, error: describeError(err) });
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

/** Whole devices only; partitions, loop, ram, zram, md and dm would count the same bytes twice or not be disks. */
const WHOLE_DISK = /^(?:mmcblk\d+|nvme\d+n\d+|sd[a-z]+|vd[a-z]+|xvd[a-z]+|hd[a-z]+)$/;

/** Cumulative bytes read and written. */
export interface IoBytes {
  read: number;
  written: number;
}

/** Bytes read and written per whole device; sectors in diskstats are always 512 bytes. */
export function parseDiskstats(text: string): Map<string, IoBytes> {
  const devices = new Map<string, IoBytes>();
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    const name = f[2];
    if (name === undefined || !WHOLE_DISK.test(name)) continue;
    const sectorsRead = Number(f[5]);
    const sectorsWritten = Number(f[9]);
    if (!Number.isSafeInteger(sectorsRead) || !Number.isSafeInteger(sectorsWritten)) continue;
    devices.set(name, { read: sectorsRead * 512, written: sectorsWritten * 512 });
  }
  return devices;
}
