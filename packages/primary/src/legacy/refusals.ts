/**
 * Refused tutorial nodes, logged by the count: a peer that retries a
 * thousand times a second must not write a thousand lines. The first
 * refusal of a reason is logged at once; the next ones are counted and
 * logged as one line a minute later (and so on, a line a minute, while
 * they go on). A timer runs only while refusals are being counted.
 */
import type { Clock, Logger } from "@picluster/common";
import type { RefusalReason } from "./admission.js";

export const REFUSAL_LOG_WINDOW_MS = 60_000;
/** Addresses and host names listed in one counted line. */
const LISTED = 10;

const MESSAGES: Record<RefusalReason, string> = {
  name_taken: "tutorial node refused: a node with credentials has its name",
  too_many_nodes: "tutorial node refused: the primary keeps no more tutorial nodes",
  too_many_new: "tutorial node refused: too many new tutorial nodes from one address",
};

/** The config key behind each limit, so the line says what to change. */
const KEYS: Record<RefusalReason, string | undefined> = {
  name_taken: undefined,
  too_many_nodes: "[legacy] max_nodes",
  too_many_new: "[legacy] new_nodes_per_minute",
};

interface Window {
  count: number;
  addresses: Set<string>;
  hosts: Set<string>;
  limit: number | undefined;
  cancel: () => void;
}

export interface Refusal {
  reason: RefusalReason;
  host: string;
  address: string;
  limit: number | undefined;
}

export class RefusalLog {
  private readonly windows = new Map<RefusalReason, Window>();
  /** Every refusal since start, by reason. */
  readonly totals: Record<RefusalReason, number> = {
    name_taken: 0,
    too_many_nodes: 0,
    too_many_new: 0,
  };

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  refused(r: Refusal): void {
    this.totals[r.reason] += 1;
    const open = this.windows.get(r.reason);
    if (open !== undefined) {
      open.count += 1;
      open.limit = r.limit;
      if (open.addresses.size < LISTED) open.addresses.add(r.address);
      if (open.hosts.size < LISTED) open.hosts.add(r.host);
      return;
    }
    this.log.warn(MESSAGES[r.reason], {
      reason: r.reason,
      refused: 1,
      host: r.host,
      address: r.address,
      ...this.limitFields(r.reason, r.limit),
    });
    this.open(r.reason, r.limit);
  }

  /** Log what is still counted and stop the timers. */
  close(): void {
    for (const [reason, w] of this.windows) {
      w.cancel();
      if (w.count > 0) this.logCounted(reason, w);
    }
    this.windows.clear();
  }

  private open(reason: RefusalReason, limit: number | undefined): void {
    const w: Window = {
      count: 0,
      addresses: new Set(),
      hosts: new Set(),
      limit,
      cancel: () => {},
    };
    w.cancel = this.clock.after(REFUSAL_LOG_WINDOW_MS, () => {
      this.windows.delete(reason);
      if (w.count === 0) return;
      this.logCounted(reason, w);
      // Still going on: the next line a minute from now at the earliest.
      this.open(reason, w.limit);
    });
    this.windows.set(reason, w);
  }

  private logCounted(reason: RefusalReason, w: Window): void {
    this.log.warn(MESSAGES[reason], {
      reason,
      refused: w.count,
      overMs: REFUSAL_LOG_WINDOW_MS,
      addresses: [...w.addresses],
      hosts: [...w.hosts],
      ...this.limitFields(reason, w.limit),
    });
  }

  private limitFields(reason: RefusalReason, limit: number | undefined) {
    const key = KEYS[reason];
    return limit === undefined || key === undefined ? {} : { limit, key };
  }
}
