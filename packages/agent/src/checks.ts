/**
 * The node's checks (`[check.NAME]`): each runs at its own interval and its
 * latest result is kept with the time its state (up or down) began. Each
 * vitals sample carries them all; the primary tells a change as an event.
 *
 * - unit: `systemctl show UNIT --property=LoadState,ActiveState,SubState`
 *   (no shell, no D-Bus client in the agent); up while ActiveState=active.
 * - http: one GET (http-get.ts, not node:http: the agent's RSS budget), no
 *   redirects followed; status range, body text, latency, and for https the
 *   certificate's expiry.
 * - tcp: a connection that opens within the timeout.
 * - ping: the system's `ping -c 1 -W SECONDS HOST`.
 */
import { connect } from "node:net";
import {
  type CheckDef,
  type Clock,
  describeError,
  type Logger,
  monotonicMs,
} from "@picluster/common";
import { type GetResult, type HttpGetError, httpGet } from "./http-get.js";
import { TASK_PATH } from "./tasks/executor.js";

const MAX_BODY = 64 * 1024;
const DAY_MS = 86_400_000;

/** One check's latest result, as the vitals carry it. */
export interface CheckResult {
  name: string;
  kind: CheckDef["kind"];
  target: string;
  up: boolean;
  /** Why, in a few words: "HTTP 200 in 12 ms", "inactive (dead)", "ECONNREFUSED". */
  reason: string;
  /** When the current state (up or down) began, clock ms. */
  since: number;
  /** When it was last checked. */
  at: number;
  latencyMs?: number;
  /** https: when the server's certificate expires, ms. */
  certExpiresAt?: number;
}

type Outcome = Pick<CheckResult, "up" | "reason"> & { latencyMs?: number; certExpiresAt?: number };

export interface ChecksOptions {
  defs: readonly CheckDef[];
  clock: Clock;
  log: Logger;
  /** The programs `unit` and `ping` run (tests point these at their own). */
  systemctl?: string;
  ping?: string;
}

/** Run a program; its exit code and stdout (bounded). The runner loads when first needed (RSS). */
async function run(
  argv: string[],
  timeoutMs: number,
): Promise<{ code: number | null; out: string; timedOut: boolean }> {
  const { collectOutput } = await import("./tasks/runner.js");
  const { result, out } = await collectOutput({
    argv,
    cwd: "/",
    env: { PATH: TASK_PATH, LANG: "C.UTF-8" },
    timeoutMs,
    outputLimit: MAX_BODY,
  });
  return { code: result.exitCode, out, timedOut: result.stopped === "timeout" };
}

function ms(start: number): number {
  return Math.round((monotonicMs() - start) * 10) / 10;
}

function tcpCheck(target: string, timeoutMs: number): Promise<Outcome> {
  const m = /^\[?(.+?)\]?:(\d+)$/.exec(target);
  const host = m?.[1] ?? target;
  const port = Number(m?.[2]);
  return new Promise((resolve) => {
    const start = monotonicMs();
    const socket = connect({ host, port });
    const done = (o: Outcome) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(o);
    };
    const timer = setTimeout(
      () => done({ up: false, reason: `no connection within ${timeoutMs} ms` }),
      timeoutMs,
    );
    socket.once("connect", () => {
      const latencyMs = ms(start);
      done({ up: true, reason: `connected in ${latencyMs} ms`, latencyMs });
    });
    socket.once("error", (err: NodeJS.ErrnoException) =>
      done({ up: false, reason: err.code === undefined ? describeError(err) : err.code }),
    );
  });
}

async function httpCheck(def: CheckDef, now: () => number): Promise<Outcome> {
  const url = new URL(def.target);
  const tls = url.protocol === "https:";
  let got: GetResult;
  try {
    got = await httpGet({
      host: url.hostname.replace(/^\[|\]$/g, ""),
      port: url.port === "" ? (tls ? 443 : 80) : Number(url.port),
      tls,
      path: `${url.pathname}${url.search}`,
      timeoutMs: def.timeoutMs,
      maxBody: MAX_BODY,
      userAgent: "picluster-check",
    });
  } catch (err) {
    const e = err as HttpGetError;
    return {
      up: false,
      reason: (e.code === "E_TIMEOUT" || e.code === "E_HTTP"
        ? e.message
        : `${e.code}: ${e.message}`
      ).slice(0, 200),
    };
  }
  const { status, latencyMs } = got;
  const extra = {
    latencyMs,
    ...(got.certValidTo === undefined ? {} : { certExpiresAt: got.certValidTo }),
  };
  const [lo, hi] = def.status;
  if (status < lo || status > hi)
    return {
      up: false,
      reason: `HTTP ${status} (expected ${lo === hi ? lo : `${lo}-${hi}`})`,
      ...extra,
    };
  if (def.body !== "" && !got.body.includes(def.body))
    return {
      up: false,
      reason: `HTTP ${status}, but the body lacks "${def.body.slice(0, 40)}"`,
      ...extra,
    };
  if (got.certValidTo !== undefined && def.certDays > 0) {
    const days = Math.floor((got.certValidTo - now()) / DAY_MS);
    if (days < def.certDays)
      return {
        up: false,
        reason:
          days < 0
            ? "the certificate has expired"
            : `the certificate expires in ${days} day${days === 1 ? "" : "s"}`,
        ...extra,
      };
  }
  return { up: true, reason: `HTTP ${status} in ${latencyMs} ms`, ...extra };
}

async function unitCheck(def: CheckDef, systemctl: string): Promise<Outcome> {
  const r = await run(
    [systemctl, "show", def.target, "--property=LoadState,ActiveState,SubState"],
    def.timeoutMs,
  );
  if (r.timedOut)
    return { up: false, reason: `systemctl did not answer within ${def.timeoutMs} ms` };
  if (r.code !== 0) return { up: false, reason: `systemctl show failed (exit status ${r.code})` };
  const props = Object.fromEntries(
    r.out
      .split("\n")
      .map((l) => l.split("="))
      .filter((p) => p.length >= 2)
      .map(([k, ...v]) => [k, v.join("=")]),
  );
  if (props.LoadState === "not-found") return { up: false, reason: "no such unit" };
  const state = `${props.ActiveState ?? "unknown"} (${props.SubState ?? "unknown"})`;
  return { up: props.ActiveState === "active", reason: state };
}

async function pingCheck(def: CheckDef, ping: string): Promise<Outcome> {
  const seconds = String(Math.max(1, Math.ceil(def.timeoutMs / 1000)));
  const r = await run([ping, "-n", "-c", "1", "-W", seconds, def.target], def.timeoutMs + 1_000);
  const time = /time[=<]([\d.]+) ?ms/.exec(r.out);
  if (r.code === 0) {
    const latencyMs = time === null ? undefined : Number(time[1]);
    return {
      up: true,
      reason: latencyMs === undefined ? "answered" : `answered in ${latencyMs} ms`,
      ...(latencyMs === undefined ? {} : { latencyMs }),
    };
  }
  return {
    up: false,
    reason: r.timedOut || r.code === 1 ? "no answer" : `ping failed (exit status ${r.code})`,
  };
}

export class Checks {
  private readonly results = new Map<string, CheckResult>();
  private readonly running = new Set<string>();
  private readonly stops: Array<() => void> = [];

  constructor(private readonly opts: ChecksOptions) {}

  get size(): number {
    return this.opts.defs.length;
  }

  start(): void {
    for (const def of this.opts.defs) {
      void this.check(def);
      this.stops.push(this.opts.clock.every(def.intervalMs, () => void this.check(def)));
    }
  }

  stop(): void {
    for (const stop of this.stops.splice(0)) stop();
  }

  /** Every check once, now (tests; `start` runs them at their intervals). */
  async checkAll(): Promise<void> {
    await Promise.all(this.opts.defs.map((d) => this.check(d)));
  }

  private async outcome(def: CheckDef): Promise<Outcome> {
    switch (def.kind) {
      case "tcp":
        return tcpCheck(def.target, def.timeoutMs);
      case "http":
        return httpCheck(def, () => this.opts.clock.now());
      case "unit":
        return unitCheck(def, this.opts.systemctl ?? "systemctl");
      case "ping":
        return pingCheck(def, this.opts.ping ?? "ping");
    }
  }

  private async check(def: CheckDef): Promise<void> {
    if (this.running.has(def.name)) return;
    this.running.add(def.name);
    try {
      let o: Outcome;
      try {
        o = await this.outcome(def);
      } catch (err) {
        o = { up: false, reason: describeError(err).slice(0, 200) };
      }
      const now = this.opts.clock.now();
      const before = this.results.get(def.name);
      const since = before !== undefined && before.up === o.up ? before.since : now;
      this.results.set(def.name, {
        name: def.name,
        kind: def.kind,
        target: def.target,
        up: o.up,
        reason: o.reason.slice(0, 256),
        since,
        at: now,
        ...(o.latencyMs === undefined ? {} : { latencyMs: o.latencyMs }),
        ...(o.certExpiresAt === undefined ? {} : { certExpiresAt: o.certExpiresAt }),
      });
      if (before === undefined ? !o.up : before.up !== o.up)
        this.opts.log[o.up ? "info" : "warn"](o.up ? "check up" : "check down", {
          check: def.name,
          reason: o.reason,
        });
    } finally {
      this.running.delete(def.name);
    }
  }

  /** The latest result of every check that has run. */
  current(): CheckResult[] {
    return this.opts.defs.flatMap((d) => {
      const r = this.results.get(d.name);
      return r === undefined ? [] : [r];
    });
  }
}
