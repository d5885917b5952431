/**
 * The audit log: one JSON line per thing someone asked the primary to do
 * (a task run, a cancel, a node removed), with who asked, in
 * `<data_dir>/audit.log` (0600). Each line is also logged.
 *
 * Lines are appended in order without blocking the event loop: each write
 * waits for the one before it, and `flushed()` (awaited by the primary's
 * close) resolves once everything written so far is on disk.
 */
import { appendFile } from "node:fs/promises";
import { type Clock, describeError, type Logger } from "@picluster/common";

export class AuditLog {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  write(record: Record<string, unknown>): void {
    const line = `${JSON.stringify({ time: new Date(this.clock.now()).toISOString(), ...record })}\n`;
    this.tail = this.tail.then(() =>
      appendFile(this.file, line, { mode: 0o600 }).catch((err: unknown) => {
        // The action itself went ahead: losing its audit line must not undo it, but it must show.
        this.log.error("cannot write the audit log", { file: this.file, err: describeError(err) });
      }),
    );
    this.log.info("audit", record);
  }

  /** Resolves when every line written so far has been appended (or its failure logged). */
  flushed(): Promise<void> {
    return this.tail;
  }
}
