/**
 * A small file system of its own for a test: a tmpfs that can be filled to
 * ENOSPC or remounted read-only without touching the machine's disks.
 * Mounting needs root (or CAP_SYS_ADMIN); without it the test is skipped.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmdirSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface MountContext {
  after(fn: () => void | Promise<void>): void;
}

/**
 * Mount a tmpfs of `size` (`2m`, `512k`) on a fresh directory and unmount it
 * when the test ends. Returns the directory, or why it cannot (not root,
 * mount refused) for `t.skip()`.
 */
export function mountTmpfs(t: MountContext, size: string): { dir: string } | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: "needs root to mount a tmpfs" };
  const dir = mkdtempSync(join(tmpdir(), "picluster-tmpfs-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size},mode=0755`, "tmpfs", dir], {
      stdio: "pipe",
    });
  } catch (err) {
    rmdirSync(dir);
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    return { skip: `mount -t tmpfs is not permitted here: ${stderr || String(err)}` };
  }
  t.after(() => {
    try {
      execFileSync("umount", [dir], { stdio: "pipe" });
    } catch {
      // Still busy (a child process that ignored its kill, an open file):
      // detach it now; the kernel frees it when the last user goes.
      execFileSync("umount", ["-l", dir], { stdio: "pipe" });
    }
    rmdirSync(dir);
  });
  return { dir };
}

/** Remount a test's tmpfs read-only or read-write. */
export function remount(dir: string, mode: "ro" | "rw"): void {
  execFileSync("mount", ["-o", `remount,${mode}`, dir], { stdio: "pipe" });
}

/**
 * Write `file` until the file system is full, in ever smaller pieces down to
 * one byte, so that not even a partly filled page is left. Returns how many
 * bytes it took.
 */
export function fillDisk(file: string): number {
  const fd = openSync(file, "w");
  let written = 0;
  try {
    for (let piece = 1 << 20; piece >= 1; piece >>= 2) {
      const buf = Buffer.alloc(piece, 0x2e);
      for (;;) {
        try {
          written += writeSync(fd, buf);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}
