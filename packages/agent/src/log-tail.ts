/** The last lines of the agent's own log file, for `logs.tail`. */
import { closeSync, fstatSync, openSync, readSync, statSync } from "node:fs";

/** Read at most this much from the end of the file. */
const MAX_READ_BYTES = 8 * 1024 * 1024;
/** A line longer than this is cut (the reply has to fit a frame). */
const MAX_LINE_CHARS = 4_096;
/** All lines of one reply together: well inside the 1 MiB frame limit. */
const MAX_REPLY_CHARS = 512 * 1024;

/** The newest lines that fit in a reply, oldest first. */
function fitReply(lines: string[]): string[] {
  let total = 0;
  let first = lines.length;
  while (first > 0) {
    const next = (lines[first - 1] as string).length + 16;
    if (total + next > MAX_REPLY_CHARS) break;
    total += next;
    first--;
  }
  return lines.slice(first);
}

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
        return fitReply(
          all
            .slice(-lines)
            .map((l) => (l.length > MAX_LINE_CHARS ? `${l.slice(0, MAX_LINE_CHARS)}…` : l)),
        );
      }
      want = Math.min(size, want * 4, MAX_READ_BYTES);
    }
  } finally {
    closeSync(fd);
  }
}

/** How often a followed log is checked for new lines. */
export const FOLLOW_POLL_MS = 250;

/**
 * Hand each line appended to `file` to `onLines` until `signal` aborts.
 * Follows rotation: when the file is replaced or shrinks, reading starts
 * again from the top of the new one.
 */
export function followLines(
  file: string,
  onLines: (text: string) => void,
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve) => {
    let ino = -1;
    let offset = 0;
    try {
      const st = statSync(file);
      ino = st.ino;
      offset = st.size;
    } catch {
      // Not there yet: it will be read from its start once it is.
    }
    let partial = "";
    const poll = () => {
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(file);
      } catch {
        return;
      }
      if (st.ino !== ino || st.size < offset) {
        ino = st.ino;
        offset = 0;
        partial = "";
      }
      if (st.size === offset) return;
      let fd: number;
      try {
        fd = openSync(file, "r");
      } catch {
        // Rotated away between the stat and the open: the next poll finds the new file.
        return;
      }
      try {
        const length = Math.min(st.size - offset, 1024 * 1024);
        const buf = Buffer.alloc(length);
        const read = readSync(fd, buf, 0, length, offset);
        offset += read;
        const text = partial + buf.subarray(0, read).toString("utf8");
        const end = text.lastIndexOf("\n");
        partial = text.slice(end + 1);
        if (end >= 0) onLines(text.slice(0, end + 1));
      } finally {
        closeSync(fd);
      }
    };
    const timer = setInterval(poll, FOLLOW_POLL_MS);
    signal.addEventListener(
      "abort",
      () => {
        clearInterval(timer);
        resolve();
      },
      { once: true },
    );
  });
}
