import type { Clock } from "../clock.js";

interface Timer {
  at: number;
  every: number | undefined;
  fn: () => void;
}

/** A clock that moves only when a test calls advance(); timers fire in time order. */
export class ManualClock implements Clock {
  private time: number;
  private readonly timers = new Set<Timer>();

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  every(ms: number, fn: () => void): () => void {
    const timer: Timer = { at: this.time + ms, every: ms, fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  after(ms: number, fn: () => void): () => void {
    const timer: Timer = { at: this.time + ms, every: undefined, fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  /** Move time forward, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.timers)
        if (t.at <= end && (next === undefined || t.at < next.at)) next = t;
      if (next === undefined) break;
      this.time = next.at;
      if (next.every === undefined) this.timers.delete(next);
      else next.at += next.every;
      next.fn();
    }
    this.time = end;
  }

  /** Timers still scheduled; a test can assert that close() left none. */
  get pending(): number {
    return this.timers.size;
  }
}
