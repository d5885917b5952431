/**
 * Delivers alert messages to channels without ever making the caller wait.
 * Each channel has its own bounded FIFO queue worked one attempt at a time;
 * each attempt is cut at the channel's timeout, and a failed one is retried
 * with exponential backoff and jitter. A channel that is down or hangs only
 * delays its own queue: every attempt races its own AbortSignal, so even a
 * sender that ignores the signal cannot hold a queue, or close(), forever.
 */
import { formatDuration, type Logger } from "@picluster/common";
import { type AlertMessage, type Channel, testMessage } from "./channels.js";

export const DEFAULT_BACKOFF_BASE_MS = 1_000;
export const DEFAULT_BACKOFF_CAP_MS = 300_000;
export const DEFAULT_QUEUE_CAPACITY = 100;

/** What happened to a message; the alert engine records failures as events. */
export interface DeliveryHooks {
  /** `ms`: from `deliver()` to the end of the attempt that succeeded. */
  onDelivered?(channel: string, msg: AlertMessage, attempts: number, ms: number): void;
  onAttemptFailed?(channel: string, msg: AlertMessage, attempt: number, error: Error): void;
  /** After the last retry failed, or at once (attempts 0) for a channel that does not exist. */
  onGaveUp?(channel: string, msg: AlertMessage, attempts: number, error: Error): void;
  /** The channel's queue was full: its oldest waiting message was dropped for a new one. */
  onDropped?(channel: string, msg: AlertMessage, capacity: number): void;
}

export interface DelivererOptions {
  channels: readonly Channel[];
  log: Logger;
  hooks?: DeliveryHooks;
  /** First retry waits about this long (half of it plus jitter); each next one twice as long. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Messages waiting per channel, besides the one being sent. */
  queueCapacity?: number;
  random?: () => number;
  now?: () => number;
}

export interface ChannelTestResult {
  ok: boolean;
  attempts: number;
  ms: number;
  error?: string;
}

/**
 * Wait before retry number `attempt` (1 for the first retry): exponential,
 * capped, with "equal jitter" (half fixed, half random) so that channels and
 * primaries failing together do not retry together.
 */
export function backoffMs(
  attempt: number,
  baseMs: number,
  capMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

interface Queued {
  msg: AlertMessage;
  queuedAt: number;
}

interface Lane {
  channel: Channel;
  log: Logger;
  queue: Queued[];
  /** The running worker, while one runs. */
  worker: Promise<void> | undefined;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export class Deliverer {
  private readonly lanes = new Map<string, Lane>();
  private readonly inFlight = new Set<AbortController>();
  private readonly sleepers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  private readonly log: Logger;
  private readonly hooks: DeliveryHooks;
  private readonly backoffBaseMs: number;
  private readonly backoffCapMs: number;
  private readonly capacity: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private closed = false;

  constructor(opts: DelivererOptions) {
    this.log = opts.log.child({ component: "alerts.delivery" });
    this.hooks = opts.hooks ?? {};
    this.backoffBaseMs = opts.backoffBaseMs ?? DEFAULT_BACKOFF_BASE_MS;
    this.backoffCapMs = opts.backoffCapMs ?? DEFAULT_BACKOFF_CAP_MS;
    this.capacity = opts.queueCapacity ?? DEFAULT_QUEUE_CAPACITY;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? Date.now;
    for (const channel of opts.channels) {
      if (this.lanes.has(channel.name)) throw new Error(`two channels are named "${channel.name}"`);
      this.lanes.set(channel.name, {
        channel,
        log: this.log.child({ channel: channel.name, type: channel.type, target: channel.target }),
        queue: [],
        worker: undefined,
      });
    }
  }

  /** The channels' names, in configuration order. */
  channelNames(): string[] {
    return [...this.lanes.keys()];
  }

  /**
   * Queue `msg` for each named channel and return at once. Hooks are never
   * called from inside this call.
   */
  deliver(channelNames: readonly string[], msg: AlertMessage): void {
    if (this.closed) {
      this.log.warn("alert not delivered: delivery is closed", {
        rule: msg.rule,
        status: msg.status,
        channels: channelNames,
      });
      return;
    }
    const queuedAt = this.now();
    for (const name of new Set(channelNames)) {
      const lane = this.lanes.get(name);
      if (lane === undefined) {
        const error = new Error(`no channel named "${name}"`);
        this.log.error("alert not delivered: no such channel", { channel: name, rule: msg.rule });
        queueMicrotask(() =>
          this.call("onGaveUp", () => this.hooks.onGaveUp?.(name, msg, 0, error)),
        );
        continue;
      }
      if (lane.queue.length >= this.capacity) {
        const dropped = lane.queue.shift();
        if (dropped !== undefined) {
          lane.log.warn("alert queue full, dropped oldest", {
            capacity: this.capacity,
            rule: dropped.msg.rule,
            status: dropped.msg.status,
            title: dropped.msg.title,
          });
          queueMicrotask(() =>
            this.call("onDropped", () => this.hooks.onDropped?.(name, dropped.msg, this.capacity)),
          );
        }
      }
      lane.queue.push({ msg, queuedAt });
      this.pump(lane);
    }
  }

  /**
   * Send one `status: "test"` message (or `msg`) to a channel now: one
   * attempt, cut at its timeout, past its queue. For `picluster alerts test`.
   */
  async test(channelName: string, msg?: AlertMessage): Promise<ChannelTestResult> {
    const lane = this.lanes.get(channelName);
    if (lane === undefined) {
      const known = this.channelNames();
      return {
        ok: false,
        attempts: 0,
        ms: 0,
        error: `no channel named "${channelName}" (${known.length === 0 ? "no channels are configured" : `channels: ${known.join(", ")}`})`,
      };
    }
    if (this.closed) return { ok: false, attempts: 0, ms: 0, error: "delivery is closed" };
    const started = this.now();
    const error = await this.attempt(lane, msg ?? testMessage(started));
    const ms = this.now() - started;
    if (error === undefined) {
      lane.log.info("test message delivered", { ms });
      return { ok: true, attempts: 1, ms };
    }
    lane.log.warn("test message failed", { ms, err: error.message });
    return { ok: false, attempts: 1, ms, error: error.message };
  }

  /**
   * Stop: waiting messages are dropped (and logged), attempts in flight are
   * aborted, backoff timers cleared. Resolves once every worker has stopped,
   * which never waits on a channel.
   */
  /**
   * Stop. With `drainMs`, first give what is queued or being sent that long
   * to go out (a primary stopping still tells what it has to tell); then
   * abort what is left.
   */
  async close(drainMs = 0): Promise<void> {
    if (this.closed) return;
    if (drainMs > 0) await this.drain(drainMs);
    this.closed = true;
    for (const controller of this.inFlight) controller.abort(new Error("delivery closed"));
    for (const sleeper of this.sleepers) {
      clearTimeout(sleeper.timer);
      sleeper.wake();
    }
    this.sleepers.clear();
    const workers: Array<Promise<void>> = [];
    for (const lane of this.lanes.values()) {
      if (lane.queue.length > 0)
        lane.log.warn("closing with alerts not delivered", { dropped: lane.queue.length });
      lane.queue.length = 0;
      if (lane.worker !== undefined) workers.push(lane.worker);
    }
    await Promise.all(workers);
  }

  /** Resolves when every lane is idle, or after `ms`. */
  private async drain(ms: number): Promise<void> {
    const until = this.now() + ms;
    for (;;) {
      const busy = [...this.lanes.values()].filter(
        (l) => l.worker !== undefined || l.queue.length > 0,
      );
      if (busy.length === 0 || this.now() >= until) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(busy.map((l) => l.worker)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, Math.max(1, until - this.now()));
        }),
      ]);
      clearTimeout(timer);
    }
  }

  private pump(lane: Lane): void {
    if (lane.worker !== undefined || this.closed) return;
    const next = lane.queue.shift();
    if (next === undefined) return;
    lane.worker = this.run(lane, next)
      .catch((err: unknown) => {
        // run() handles every channel failure; this is a bug in it or a hook.
        lane.log.error("alert delivery worker failed", { err: asError(err).message });
      })
      .finally(() => {
        lane.worker = undefined;
        this.pump(lane);
      });
  }

  private async run(lane: Lane, item: Queued): Promise<void> {
    const { channel } = lane;
    const { msg } = item;
    const fields = { rule: msg.rule, status: msg.status };
    let lastError = new Error("not attempted");
    const attempts = channel.retries + 1;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      if (this.closed) return;
      const error = await this.attempt(lane, msg);
      if (error === undefined) {
        const ms = this.now() - item.queuedAt;
        lane.log.info("alert delivered", { ...fields, attempts: attempt, ms });
        this.call("onDelivered", () => this.hooks.onDelivered?.(channel.name, msg, attempt, ms));
        return;
      }
      // Aborted by close(): not the channel's failure.
      if (this.closed) return;
      lastError = error;
      lane.log.warn("alert attempt failed", {
        ...fields,
        attempt,
        of: attempts,
        err: error.message,
      });
      this.call("onAttemptFailed", () =>
        this.hooks.onAttemptFailed?.(channel.name, msg, attempt, error),
      );
      if (attempt < attempts)
        await this.sleep(backoffMs(attempt, this.backoffBaseMs, this.backoffCapMs, this.random));
    }
    if (this.closed) return;
    lane.log.error("alert given up", { ...fields, attempts, err: lastError.message });
    this.call("onGaveUp", () => this.hooks.onGaveUp?.(channel.name, msg, attempts, lastError));
  }

  /** One attempt, cut at the channel's timeout; the error, or undefined when delivered. */
  private async attempt(lane: Lane, msg: AlertMessage): Promise<Error | undefined> {
    const { channel } = lane;
    const controller = new AbortController();
    this.inFlight.add(controller);
    const timer = setTimeout(
      () => controller.abort(new Error(`timed out after ${formatDuration(channel.timeoutMs)}`)),
      channel.timeoutMs,
    );
    // Settles when the attempt is aborted, whether or not send() honours the signal.
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener("abort", () => reject(controller.signal.reason), {
        once: true,
      });
    });
    try {
      await Promise.race([channel.send(msg, controller.signal), aborted]);
      return undefined;
    } catch (err) {
      return asError(err);
    } finally {
      clearTimeout(timer);
      this.inFlight.delete(controller);
      // Whatever the sender still holds for this attempt (a socket, a child) is let go.
      if (!controller.signal.aborted) controller.abort(new Error("attempt over"));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const sleeper = {
        timer: setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.sleepers.add(sleeper);
    });
  }

  /** Run a hook; a throwing hook is the engine's bug, logged, and never stops delivery. */
  private call(hook: keyof DeliveryHooks, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error("alert delivery hook threw", { hook, err: asError(err).message });
    }
  }
}
