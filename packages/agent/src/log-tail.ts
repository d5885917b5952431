/** The last lines of the agent's own log file, for `logs.tail`. */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** Read at most this much from the end of the file. */
const MAX_READ_BYTES = 8 * 1024 * 1024;
/** A line longer than this is cut (the reply has to fit a frame). */
const MAX_LINE_CHARS = 4_096;

export function tailLines(file: string, lines: number): string[] {
  const fd = openSync(file, "r");
  try {
    const size = fstatSync(fd).size;
    let want = Math.min(size, 64 * 1024);
    for (;;) {
      const buf = Buffer.alloc(want);
      readSync(fd, buf, 0, want, size - want);
      const text = buf.toString("utf8");
      const all = text.split("\n");
      if (all.at(-1) === "") all.pop();
      // The first piece may be a partial line unless we read from the start.
      if (want < size) all.shift();
      if (all.length >= lines || want >= size || want >= MAX_READ_BYTES) {
        return all
          .slice(-lines)
          .map((l) => (l.length > MAX_LINE_CHARS ? `${l.slice(0, MAX_LINE_CHARS)}…` : l));
      }
      want = Math.min(size, want * 4, MAX_READ_BYTES);
    }
  } finally {
    closeSync(fd);
  }
}
