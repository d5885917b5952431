/**
 * A size-rotated log file: `agent.log`, then `agent.log.1` … `agent.log.N`.
 *
 * Written by hand because it must be synchronous: each line reaches the file
 * in one write(2) before the logging call returns, so lines never tear or
 * reorder and a crash loses none that were logged. The rotating-stream
 * libraries on npm buffer asynchronously. Only one owner (per process, one
 * thread) may hold a RotatingFile; worker threads send their lines to it
 * (see worker.ts).
 */
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";

export interface RotatingFileOptions {
  dir: string;
  /** File name inside dir, e.g. `agent.log`. */
  name: string;
  /** Rotate before a write would take the file past this many bytes. */
  maxBytes: number;
  /** How many rotated files to keep besides the current one. */
  keep: number;
}

export class RotatingFile {
  private fd: number | undefined;
  private size = 0;
  /** A write failed part-way: the file ends inside a line, so the next one starts on its own. */
  private torn = false;
  readonly path: string;

  constructor(private readonly opts: RotatingFileOptions) {
    this.path = join(opts.dir, opts.name);
  }

  open(): void {
    mkdirSync(this.opts.dir, { recursive: true, mode: 0o750 });
    this.fd = openSync(this.path, "a", 0o640);
    this.size = fstatSync(this.fd).size;
  }

  /**
   * Append one complete line (with its newline). Throws what the file
   * system says (ENOSPC, EROFS…); the file is then closed, and the next
   * write opens it again.
   */
  write(line: string): void {
    try {
      if (this.fd === undefined) this.open();
      const bytes = Buffer.byteLength(line);
      if (this.size > 0 && this.size + bytes > this.opts.maxBytes) this.rotate();
      const buf = Buffer.from(this.torn ? `\n${line}` : line);
      // writeSync may write less than asked on some file systems; finish it.
      let off = 0;
      try {
        while (off < buf.length) off += writeSync(this.fd as number, buf, off);
      } finally {
        this.size += off;
        if (off > 0) this.torn = off < buf.length;
      }
    } catch (err) {
      this.release();
      throw err;
    }
  }

  /** After a failed write: let go of the descriptor so the next write opens the file afresh. */
  private release(): void {
    const fd = this.fd;
    this.fd = undefined;
    if (fd === undefined) return;
    try {
      closeSync(fd);
    } catch {
      // close(2) frees the descriptor even when it reports an error (EIO on
      // a failing disk); the write's own error is the one the caller handles.
    }
  }

  private rotate(): void {
    this.close();
    const { keep } = this.opts;
    rmSync(`${this.path}.${keep}`, { force: true });
    for (let i = keep - 1; i >= 1; i--) {
      try {
        renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    renameSync(this.path, `${this.path}.1`);
    // The torn line, if any, is in the old file: the new one starts clean.
    this.torn = false;
    this.open();
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
