/**
 * Nobody watches the watcher, unless it says it is alive: every interval the
 * primary POSTs a small JSON body to a URL the user gives (a Healthchecks.io
 * or Uptime Kuma push URL, any webhook), and the service there tells the user
 * when the beats stop, whatever killed this machine.
 *
 * A beat never waits for the one before: one still unanswered when the next
 * is due is cut then, so a receiver that hangs costs one request, never the
 * schedule, and nothing else in the primary waits on either. Failures are
 * logged at most once per window, naming the receiver's host only: the path
 * of a push URL is its secret.
 */
import {
  type Clock,
  describeError,
  formatDuration,
  type Logger,
  PiclusterError,
} from "@picluster/common";
import { describeFetchError, hostOf } from "./alerts/channels.js";
import type { NodeState } from "./events.js";

/** What each beat says; `at` is milliseconds since the epoch. */
export interface HeartbeatBody {
  status: "ok";
  /** This machine's host name. */
  primary: string;
  version: string;
  nodes: Record<NodeState, number>;
  alertsFiring: number;
  at: number;
}

export type HeartbeatErrorCode = "E_HEARTBEAT_HTTP" | "E_HEARTBEAT_TIMEOUT" | "E_HEARTBEAT_SEND";

/** One beat the receiver did not take. Its message names the host, never the URL. */
export class HeartbeatError extends PiclusterError {
  declare readonly code: HeartbeatErrorCode;
  constructor(code: HeartbeatErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A failure is logged if none was in this window; the ones in between are counted. */
export const HEARTBEAT_LOG_WINDOW_MS = 15 * 60_000;

export interface HeartbeatOptions {
  url: string;
  /** `get`: the URL alone, no body (Uptime Kuma 1's push URL takes nothing else). */
  method: "post" | "get";
  intervalMs: number;
  timeoutMs: number;
  clock: Clock;
  log: Logger;
  /** The primary's version, for the user agent. */
  version: string;
  /** What to report, read at each beat. */
  body(): HeartbeatBody;
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
}

/** What to change for the answers a first setup usually meets. */
function statusHint(status: number, post: boolean): string {
  if (status >= 300 && status < 400) return " (redirects are not followed)";
  // Uptime Kuma before 2.0 answers a POST to its push URL with 404.
  if (post && (status === 404 || status === 405))
    return " (if the receiver takes only GET, like Uptime Kuma 1's push URL, set [heartbeat] method = get)";
  return "";
}

export class Heartbeat {
  /** When the receiver last took a beat (clock ms); undefined before the first. */
  lastSuccessAt: number | undefined;
  /** Beats in a row the receiver did not take. */
  failures = 0;
  private readonly host: string;
  private readonly log: Logger;
  private readonly fetchFn: typeof fetch;
  private stopTimer: () => void = () => {};
  /** The beat still waiting for its answer, if any: at most one. */
  private inFlight: AbortController | undefined;
  private readonly settling = new Set<Promise<void>>();
  private closed = false;
  private lastLoggedFailureAt: number | undefined;
  private notLogged = 0;
  /** Whether a failure of the current run of failures was logged (so its end is too). */
  private streakLogged = false;

  constructor(private readonly opts: HeartbeatOptions) {
    this.host = hostOf(opts.url);
    this.log = opts.log.child({ component: "heartbeat", host: this.host });
    this.fetchFn = opts.fetch ?? fetch;
  }

  /** Beat now, then every interval on the clock (no jitter: one sender, one receiver). */
  start(): void {
    this.stopTimer();
    this.closed = false;
    this.log.info("heartbeat on", { intervalMs: this.opts.intervalMs });
    this.beat();
    this.stopTimer = this.opts.clock.every(this.opts.intervalMs, () => this.beat());
  }

  /** Stop beating; a beat in flight is cut. Resolves once nothing is left running. */
  async close(): Promise<void> {
    this.closed = true;
    this.stopTimer();
    this.stopTimer = () => {};
    this.inFlight?.abort(new HeartbeatError("E_HEARTBEAT_SEND", "the primary is stopping"));
    await Promise.all([...this.settling]);
  }

  private beat(): void {
    // A receiver that hangs must not hold the schedule: its beat ends here.
    this.inFlight?.abort(
      new HeartbeatError("E_HEARTBEAT_TIMEOUT", "no answer before the next heartbeat was due"),
    );
    const ac = new AbortController();
    this.inFlight = ac;
    const cancelTimeout = this.opts.clock.after(this.opts.timeoutMs, () =>
      ac.abort(
        new HeartbeatError(
          "E_HEARTBEAT_TIMEOUT",
          `no answer within ${formatDuration(this.opts.timeoutMs)}`,
        ),
      ),
    );
    const done: Promise<void> = this.send(ac.signal)
      .then(
        () => this.succeeded(),
        (err: unknown) => this.failed(err),
      )
      .finally(() => {
        cancelTimeout();
        if (this.inFlight === ac) this.inFlight = undefined;
        this.settling.delete(done);
      });
    this.settling.add(done);
  }

  /** One request; any 2xx is taken. Rejects with a HeartbeatError (or the abort's reason). */
  private async send(signal: AbortSignal): Promise<void> {
    const post = this.opts.method === "post";
    const userAgent = { "user-agent": `picluster/${this.opts.version}` };
    let res: Response;
    try {
      res = await this.fetchFn(this.opts.url, {
        ...(post
          ? {
              method: "POST",
              headers: { ...userAgent, "content-type": "application/json" },
              body: JSON.stringify(this.opts.body()),
            }
          : { method: "GET", headers: userAgent }),
        signal,
        // The URL is the secret: it is not handed to wherever a redirect points.
        redirect: "manual",
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      throw new HeartbeatError(
        "E_HEARTBEAT_SEND",
        `${post ? "POST" : "GET"} to ${this.host} failed: ${describeFetchError(err)}`,
        { cause: err },
      );
    }
    // The body is not read, not even for the error: a receiver's "Cannot POST
    // /<path>" would put the URL's secret in our log.
    await res.body?.cancel();
    if (res.status < 200 || res.status >= 300) {
      throw new HeartbeatError(
        "E_HEARTBEAT_HTTP",
        `HTTP ${res.status} from ${this.host}${statusHint(res.status, post)}`,
      );
    }
  }

  private succeeded(): void {
    const first = this.lastSuccessAt === undefined;
    this.lastSuccessAt = this.opts.clock.now();
    // Told once it works, and once it works again after a failure we logged.
    if (this.streakLogged)
      this.log.info("heartbeat delivered again", { failedBefore: this.failures });
    else if (first) this.log.info("heartbeat delivered");
    this.failures = 0;
    this.streakLogged = false;
  }

  private failed(err: unknown): void {
    // Cut by close(): the primary stopping is no failure of the receiver.
    if (this.closed) return;
    this.failures += 1;
    const now = this.opts.clock.now();
    if (
      this.lastLoggedFailureAt !== undefined &&
      now - this.lastLoggedFailureAt < HEARTBEAT_LOG_WINDOW_MS
    ) {
      this.notLogged += 1;
      return;
    }
    this.log.warn("heartbeat not delivered", {
      code: err instanceof PiclusterError ? err.code : "E_HEARTBEAT_SEND",
      error: this.redact(err instanceof PiclusterError ? err.message : describeError(err)),
      failures: this.failures,
      notLogged: this.notLogged,
      nextInMs: this.opts.intervalMs,
    });
    this.lastLoggedFailureAt = now;
    this.notLogged = 0;
    this.streakLogged = true;
  }

  /** Whatever an error says, the URL's path and query do not reach the log. */
  private redact(text: string): string {
    let out = text.replaceAll(this.opts.url, this.host);
    try {
      const { pathname, search } = new URL(this.opts.url);
      for (const secret of [`${pathname}${search}`, pathname, search])
        if (secret.length > 1) out = out.replaceAll(secret, "/…");
    } catch {
      // The config loader only lets valid URLs through; nothing to take out.
    }
    return out;
  }
}
