/**
 * Alerts in the scale-out mode: every primary's engine judges the same
 * replicated nodes, but only the leader tells anyone.
 *
 * Shared state, one key per (rule, nodes) in a JetStream key-value bucket:
 * the last status told (`firing` or `resolved`), by whom and when. The
 * leader claims a message (puts its key) and then hands it to the channels,
 * so that a message is never told twice, even across a change of leader.
 * A follower keeps what its engine would have told for a while (two
 * leases); the leader's put drops it; if the follower becomes the leader
 * first (the old one died before telling), it tells what the shared state
 * says nobody told. A primary's own store alert (`store_failing`) is about
 * that primary: it is told by it, whoever leads.
 */
import { createHash } from "node:crypto";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import { type Clock, describeError, type Logger } from "@picluster/common";
import type { AlertMessage } from "../alerts/message.js";

interface Told {
  status: AlertMessage["status"];
  by: string;
  at: number;
}

interface Pending {
  key: string;
  channels: readonly string[];
  msg: AlertMessage;
  until: number;
}

/** Rules about the primary itself, not the nodes: told by each primary for itself. */
const OWN_RULES = new Set(["store_failing"]);

export interface AlertGateOptions {
  /** Hand a message to the channels (the Deliverer). */
  deliver(channels: readonly string[], msg: AlertMessage): void;
  /** How long a follower keeps a message its engine made. */
  holdMs: number;
  clock: Clock;
  log: Logger;
}

export function alertKey(msg: Pick<AlertMessage, "rule" | "nodes">): string {
  const nodes = msg.nodes
    .map((n) => n.id)
    .sort()
    .join(",");
  return `a.${createHash("sha256").update(`${msg.rule}|${nodes}`).digest("hex").slice(0, 32)}`;
}

export class AlertGate {
  private kv: KV | undefined;
  private leader = false;
  private pending: Pending[] = [];
  /** The last status told per key, as seen in the bucket. */
  private readonly told = new Map<string, Told>();
  private stopWatch: (() => void) | undefined;
  /** Messages told by this primary (for tests and logs). */
  toldHere = 0;
  /** This primary's name in the cluster (set when it joins). */
  self = "";

  constructor(private readonly opts: AlertGateOptions) {}

  /** The last status told for `msg`'s rule and nodes, as this primary has seen it. */
  lastTold(msg: Pick<AlertMessage, "rule" | "nodes">): AlertMessage["status"] | undefined {
    return this.told.get(alertKey(msg))?.status;
  }

  /** The shared state is reachable: follow it. */
  async attach(kv: KV): Promise<void> {
    this.kv = kv;
    const iter = await kv.watch({ key: "a.>" });
    this.stopWatch = () => iter.stop();
    void (async () => {
      for await (const e of iter) this.seen(e);
    })();
  }

  stop(): void {
    this.stopWatch?.();
  }

  /** The engine's notifier. */
  deliver(channels: readonly string[], msg: AlertMessage): void {
    if (msg.status === "test" || OWN_RULES.has(msg.rule)) {
      this.opts.deliver(channels, msg);
      return;
    }
    const key = alertKey(msg);
    if (this.leader && this.kv !== undefined) {
      void this.claim(key, channels, msg);
      return;
    }
    this.pending.push({ key, channels, msg, until: this.opts.clock.now() + this.opts.holdMs });
  }

  /** Leadership changed: a new leader tells what was made and nobody told. */
  setLeader(leader: boolean): void {
    this.leader = leader;
    if (!leader) return;
    const now = this.opts.clock.now();
    const pending = this.pending.filter((p) => p.until >= now);
    this.pending = [];
    for (const p of pending) {
      if (this.told.get(p.key)?.status === p.msg.status) continue;
      this.opts.log.info("telling what the last leader did not", {
        rule: p.msg.rule,
        status: p.msg.status,
        title: p.msg.title,
      });
      void this.claim(p.key, p.channels, p.msg);
    }
  }

  private seen(e: KvWatchEntry): void {
    if (e.operation !== "PUT") return;
    let told: Told;
    try {
      told = e.json<Told>();
    } catch {
      return;
    }
    this.told.set(e.key, told);
    const now = this.opts.clock.now();
    // Told by the leader, or too old to matter: nothing to keep.
    this.pending = this.pending.filter(
      (p) => p.until >= now && !(p.key === e.key && p.msg.status === told.status),
    );
  }

  /** Put the key first, then tell: a leader that dies between the two tells nothing twice. */
  private async claim(key: string, channels: readonly string[], msg: AlertMessage): Promise<void> {
    const before = this.told.get(key);
    if (
      before !== undefined &&
      before.by !== this.self &&
      before.status === msg.status &&
      Math.abs(before.at - msg.at) < this.opts.holdMs
    ) {
      // The last leader told this one a moment ago (this engine judged it a little later).
      return;
    }
    const value: Told = { status: msg.status, by: this.self, at: msg.at };
    try {
      await this.kv?.put(key, JSON.stringify(value));
      this.told.set(key, value);
    } catch (err) {
      // The shared state is out of reach: telling twice beats telling nothing.
      this.opts.log.warn("alert state not shared; telling anyway", { err: describeError(err) });
    }
    this.toldHere++;
    this.opts.deliver(channels, msg);
  }
}
