/**
 * A test's own scratch directory, removed when the test ends without ever
 * failing the test or skipping the cleanups registered after it.
 *
 * Node runs a test's `after` hooks in the order they were registered and stops
 * at the first that throws: a directory made before the processes writing into
 * it would be removed while they still run (ENOTEMPTY as a file appears
 * between the unlinks and the rmdir), and a throw there would leave those
 * processes running and the test file never exiting. So the removal is retried
 * briefly, and what still cannot go is removed when the test process exits,
 * after every other cleanup has run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ScratchContext {
  after(fn: () => void | Promise<void>): void;
}

const leftOver = new Set<string>();
let exitHook = false;

function removeNow(dir: string): boolean {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3, retryDelay: 50 });
    return true;
  } catch {
    return false;
  }
}

/** Remove `dir` now if it can go, or else when this process exits; never throws. */
export function removeQuietly(dir: string): void {
  if (!removeNow(dir)) removeAtExit(dir);
}

/**
 * Remove `dir` when this process exits, after every test and cleanup: for a
 * directory a test may open again after closing what used it (a primary
 * restarted on its data directory).
 */
export function removeAtExit(dir: string): void {
  leftOver.add(dir);
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const left of leftOver) removeNow(left);
  });
}

/** A fresh directory under the system's temp directory, removed (quietly) when `t` ends. */
export function scratchDir(t: ScratchContext, prefix = "picluster-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => removeQuietly(dir));
  return dir;
}
