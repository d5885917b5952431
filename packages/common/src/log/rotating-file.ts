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
  readonly path: string;

  constructor(private readonly opts: RotatingFileOptions) {
    this.path = join(opts.dir, opts.name);
  }

  open(): void {
    mkdirSync(this.opts.dir, { recursive: true, mode: 0o750 });
    this.fd = openSync(this.path, "a", 0o640);
    this.size = fstatSync(this.fd).size;
  }

  /** Append one complete line (with its newline). */
  write(line: string): void {
    if (this.fd === undefined) this.open();
    const bytes = Buffer.byteLength(line);
    if (this.size > 0 && this.size + bytes > this.opts.maxBytes) this.rotate();
    // writeSync may write less than asked on some file systems; finish it.
    const buf = Buffer.from(line);
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd as number, buf, off);
    this.size += bytes;
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
    this.open();
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
