/**
 * The audit log: one JSON line per thing someone asked the primary to do
 * (a task run, a cancel, a node removed), with who asked, in
 * `<data_dir>/audit.log` (0600). Each line is also logged.
 */
import { appendFileSync } from "node:fs";
import { type Clock, describeError, type Logger } from "@picluster/common";

export class AuditLog {
  constructor(
    readonly file: string,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  write(record: Record<string, unknown>): void {
    const line = `${JSON.stringify({ time: new Date(this.clock.now()).toISOString(), ...record })}\n`;
    try {
      appendFileSync(this.file, line, { mode: 0o600 });
    } catch (err) {
      // The action itself went ahead: losing its audit line must not undo it, but it must show.
      this.log.error("cannot write the audit log", { file: this.file, err: describeError(err) });
    }
    this.log.info("audit", record);
  }
}
