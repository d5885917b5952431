import type { AlertState } from "@picluster/common";
/**
 * Alert rules against the live cluster. Each rule is evaluated for a node
 * when something about that node changes (its state, a sample, its
 * details), from the registry and the event bus; the store is never polled.
 * A condition that holds for the rule's `for` fires: an `alert.firing`
 * event, and one notification; when it stops holding, `alert.resolved` and
 * one more. Rules that fire for many nodes at once are told as one summary;
 * quiet hours hold all but critical messages until they end, and (unless
 * `legacyQuietHours` is off) every message about a tutorial node: anyone
 * who reaches the unauthenticated legacy listener must not page at night.
 */
import {
  type AlertRuleDef,
  type Clock,
  compareAlert,
  describeError,
  type Logger,
  type MessageMap,
  nodeMatches,
  parseSelector,
  type SelectorTerm,
} from "@picluster/common";
import type { ClusterEvent, EventBus, StoreFailureCause } from "../events.js";
import { type NodeRecord, RESTART_REASON, type Registry } from "../registry.js";
import { METRICS, type MetricDef } from "../store/metrics.js";
import type { StoreHealth } from "../store/store.js";
import type { AlertMessage, Notifier } from "./message.js";
import { type Subject, wordAlert, wordPrimaryStore } from "./wording.js";

/** How often pending conditions are checked against their `for`, and messages sent. */
export const ALERT_TICK_MS = 200;
/** Nodes whose rule would fire this soon after another's are told together. */
const GROUP_EARLY_MS = 2_000;
/**
 * A node's samples are judged once they stop coming for this long: a replay
 * of an outage's backlog (hundreds at once) is judged once, on its newest
 * sample, never sample by sample as if each were now.
 */
const SETTLE_MS = 300;
/** The nodes of a summary that come back within this long are told back together. */
const RESOLVE_GROUP_MS = 30_000;
/**
 * After the primary starts, every known node is down until it reconnects:
 * give agents this long (their reconnection backoff) before `down` counts.
 */
export const STARTUP_GRACE_MS = 120_000;

/** Metrics about the primary itself, not a node: judged by storeHealth(), never per node. */
const PRIMARY_METRICS = new Set(["store_failing"]);

/** A rule on the primary's store, from the moment the store stopped writing. */
interface PrimaryTrack {
  rule: AlertRuleDef;
  since: number;
  /** Its message went out (in quiet hours a warning waits). */
  told: boolean;
}

export interface AlertSettings {
  enabled: boolean;
  /** Channels for rules that name none; empty: every channel. */
  channels: readonly string[];
  /** Minutes after local midnight: [start, end); undefined: no quiet hours. */
  quietHours: { start: number; end: number } | undefined;
  /** Quiet hours hold critical messages about tutorial (legacy) nodes too. */
  legacyQuietHours: boolean;
  summaryAfter: number;
}

export interface AlertEngineOptions {
  rules: readonly AlertRuleDef[];
  settings: AlertSettings;
  registry: Registry;
  events: EventBus;
  clock: Clock;
  log: Logger;
  /** The primary's version: an agent that differs is flagged. */
  version: string;
  notifier?: Notifier;
  /** The dashboard's address, for links in messages. */
  dashboardUrl?: () => string | undefined;
}

/** One rule on one node, from the moment its condition first held. */
interface Track {
  rule: AlertRuleDef;
  nodeId: string;
  name: string;
  /** A tutorial node's (see legacyQuietHours). */
  legacy: boolean;
  since: number;
  value: number;
  firing: boolean;
  firedAt: number;
  /** Last time a message about it went out (0: never). */
  notifiedAt: number;
  /** Fired during quiet hours and not told yet. */
  held: boolean;
  /** The message's title when it fired. */
  title: string;
  /** Since when a firing condition has stopped holding (it resolves after the rule's `clear`). */
  clearSince: number | undefined;
  /** Told as part of this summary: its resolution waits for the others'. */
  group: number | undefined;
}

// The shape the API answers with lives in common, for the CLI and the dashboard too.
export type { AlertState } from "@picluster/common";

type Vitals = MessageMap["vitals"];
const VITALS_METRICS = new Map<string, MetricDef["from"]>(METRICS.map((m) => [m.name, m.from]));

function throttleFlag(
  v: Vitals,
  flag: keyof NonNullable<Vitals["throttling"]>,
): number | undefined {
  const t = v.throttling;
  if (t === undefined) return undefined;
  return t[flag] ? 1 : 0;
}

/**
 * A node's value for a rule's metric, or undefined when there is nothing
 * current to judge by (a node not alive has no current figures; the rule's
 * state then stays as it is).
 */
export function alertValue(
  metric: string,
  node: NodeRecord,
  primaryVersion: string,
): number | undefined {
  if (metric === "down") return node.state === "down" ? 1 : 0;
  // A suspect node is still connected: its figures stand until it is down.
  if (node.state !== "alive" && node.state !== "suspect") return undefined;
  switch (metric) {
    case "version_mismatch":
      // The tutorial's nodes have no agent version to compare.
      return node.legacy || node.agentVersion === ""
        ? undefined
        : node.agentVersion === primaryVersion
          ? 0
          : 1;
    case "updates":
      return node.details?.updates?.available;
  }
  const v = node.vitals;
  // A sample from before the node's current state (its last one before an outage) says nothing now.
  if (v === undefined || (node.state === "alive" && (node.vitalsAt ?? 0) < node.stateSince))
    return undefined;
  switch (metric) {
    case "under_voltage":
      return throttleFlag(v, "underVoltage");
    case "throttled":
      return throttleFlag(v, "throttled");
    case "freq_capped":
      return throttleFlag(v, "freqCapped");
    case "soft_temp_limit":
      return throttleFlag(v, "softTempLimit");
    case "check_down":
      return v.checks === undefined ? undefined : v.checks.filter((c) => !c.up).length;
    case "container_down":
      return v.containers?.filter(
        (c) => c.state === "dead" || (c.state === "exited" && (c.exitCode ?? 0) !== 0),
      ).length;
    case "container_restarting":
      // Restarting now, or twice in the last 10 minutes: a crash loop, not one restart.
      return v.containers?.filter((c) => c.state === "restarting" || (c.recentRestarts ?? 0) >= 2)
        .length;
    case "load_per_core": {
      const cores = node.details?.cpu.cores ?? v.cpu.perCore.length;
      const load = v.load?.[0];
      return load === undefined || !(cores > 0) ? undefined : load / cores;
    }
  }
  if (metric.startsWith("custom.")) {
    const key = metric.slice("custom.".length);
    return v.custom?.find((c) => c.series === key)?.value;
  }
  return VITALS_METRICS.get(metric)?.(v);
}

/** "22:00-07:00" into minutes after midnight, or undefined for "". */
export function parseQuietHours(text: string): { start: number; end: number } | undefined {
  const m = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(text);
  if (m === null) return undefined;
  const [, h1 = "0", m1 = "0", h2 = "0", m2 = "0"] = m;
  return { start: Number(h1) * 60 + Number(m1), end: Number(h2) * 60 + Number(m2) };
}

export function inQuietHours(q: AlertSettings["quietHours"], at: number): boolean {
  if (q === undefined || q.start === q.end) return false;
  const d = new Date(at);
  const minute = d.getHours() * 60 + d.getMinutes();
  return q.start < q.end
    ? minute >= q.start && minute < q.end
    : minute >= q.start || minute < q.end;
}

interface Outgoing {
  firing: Track[];
  resolved: Array<{ track: Track; value: number | null }>;
}

const key = (rule: string, nodeId: string) => `${rule}\u0000${nodeId}`;

export class AlertEngine {
  private readonly rules: Array<{ def: AlertRuleDef; terms: SelectorTerm[] }> = [];
  private readonly tracks = new Map<string, Track>();
  private outgoing = new Map<string, Outgoing>();
  /** Resolutions of alerts told before quiet hours, told when they end. */
  private heldResolved: Array<{ track: Track; value: number | null }> = [];
  /** Summaries whose nodes are coming back: told together when all are back, or after a while. */
  private readonly resolving = new Map<
    number,
    { first: number; items: Array<{ track: Track; value: number | null }> }
  >();
  private groups = 0;
  /** Nodes with new samples, and when they may be judged (no newer sample for SETTLE_MS). */
  private readonly dirty = new Map<string, number>();
  private quiet = false;
  private startedAt = 0;
  private graceOver = false;
  private stopTicker: (() => void) | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly primaryRules: AlertRuleDef[] = [];
  private readonly primaryTracks = new Map<string, PrimaryTrack>();
  private storeFailure: { cause: StoreFailureCause; error: string; since: number } | undefined;

  constructor(private readonly opts: AlertEngineOptions) {
    for (const def of opts.rules) {
      if (!def.enabled) continue;
      if (PRIMARY_METRICS.has(def.metric)) {
        this.primaryRules.push(def);
        continue;
      }
      // `on` was read with the same parser when the config was loaded.
      this.rules.push({ def, terms: parseSelector(def.on) });
    }
  }

  get enabled(): boolean {
    return this.opts.settings.enabled;
  }

  /** Every rule as configured (switched-off ones too). */
  get ruleDefs(): readonly AlertRuleDef[] {
    return this.opts.rules;
  }

  /**
   * Take up what an earlier primary left firing (its stored events), so a
   * restart neither tells again what was told nor forgets to tell it resolved.
   * (A firing the last primary held in quiet hours and never sent counts as
   * told: the events do not say which were sent.)
   */
  restore(
    events: ReadonlyArray<{
      id: number;
      ts: number;
      kind: string;
      nodeId: string | null;
      data: Record<string, unknown>;
    }>,
  ): number {
    const last = new Map<string, (typeof events)[number]>();
    for (const e of [...events].sort((a, b) => a.id - b.id)) {
      if (e.nodeId === null) continue;
      const k = key(String(e.data.rule), e.nodeId);
      if (e.kind === "alert.firing") last.set(k, e);
      else if (e.kind === "alert.resolved") last.delete(k);
    }
    let restored = 0;
    for (const [k, e] of last) {
      const rule = this.rules.find((r) => r.def.name === e.data.rule)?.def;
      const node = e.nodeId === null ? undefined : this.opts.registry.get(e.nodeId);
      if (rule === undefined || node === undefined || e.nodeId === null) continue;
      this.tracks.set(k, {
        rule,
        nodeId: e.nodeId,
        name: node.name,
        legacy: node.legacy,
        // It fired once its condition had held for the rule's `for`.
        since: e.ts - rule.forMs,
        value: typeof e.data.value === "number" ? e.data.value : 0,
        firing: true,
        firedAt: e.ts,
        notifiedAt: e.ts,
        held: false,
        title: String(e.data.title ?? ""),
        clearSince: undefined,
        group: undefined,
      });
      restored++;
    }
    return restored;
  }

  start(): void {
    if (!this.opts.settings.enabled) return;
    this.startedAt = this.opts.clock.now();
    this.quiet = inQuietHours(this.opts.settings.quietHours, this.startedAt);
    this.unsubscribe = this.opts.events.on((e) => this.onEvent(e));
    for (const node of this.opts.registry.list()) this.evaluate(node);
    this.stopTicker = this.opts.clock.every(ALERT_TICK_MS, () => this.tick());
  }

  /** Stop; what is ready to be told is handed to the channels first. */
  close(): void {
    this.unsubscribe?.();
    this.stopTicker?.();
    if (this.startedAt > 0) this.flush(this.opts.clock.now());
  }

  /** What is pending and firing now, firing first, then by rule and node. */
  states(): AlertState[] {
    return [...this.tracks.values()]
      .map(
        (t): AlertState => ({
          rule: t.rule.name,
          nodeId: t.nodeId,
          name: t.name,
          legacy: t.legacy,
          severity: t.rule.severity,
          state: t.firing ? "firing" : "pending",
          since: t.since,
          firedAt: t.firing ? t.firedAt : null,
          value: t.value,
          title: t.title,
        }),
      )
      .sort(
        (a, b) =>
          Number(b.state === "firing") - Number(a.state === "firing") ||
          a.rule.localeCompare(b.rule) ||
          a.name.localeCompare(b.name, "en", { numeric: true }),
      );
  }

  /**
   * A node was removed: whatever pends or fires for it ends now, each
   * firing one with an `alert.resolved` event (the page and the store see
   * it) but no message: nobody is told a removed node is "back". Returns
   * how many were firing.
   */
  forget(nodeId: string): number {
    const now = this.opts.clock.now();
    let firing = 0;
    for (const [k, t] of this.tracks) {
      if (t.nodeId !== nodeId) continue;
      this.tracks.delete(k);
      if (!t.firing) continue;
      firing++;
      this.resolve(t, null, now, false);
    }
    this.dirty.delete(nodeId);
    // Resolutions not told yet (held in quiet hours, or waiting for the rest of a summary) stay
    // untold: they would announce a node that no longer exists.
    this.heldResolved = this.heldResolved.filter((r) => r.track.nodeId !== nodeId);
    for (const g of this.resolving.values())
      g.items = g.items.filter((r) => r.track.nodeId !== nodeId);
    for (const out of this.outgoing.values())
      out.resolved = out.resolved.filter((r) => r.track.nodeId !== nodeId);
    return firing;
  }

  /**
   * The primary's store stopped writing, or writes again: rules on
   * `store_failing` fire after their `for` (told once, through the same
   * channels, quiet hours and all) and resolve when it writes again.
   * Nothing is stored about them but the store's own events.
   */
  storeHealth(health: StoreHealth): void {
    if (this.startedAt === 0) return;
    const now = this.opts.clock.now();
    if (!health.ok) {
      this.storeFailure = { cause: health.cause, error: health.error, since: health.since };
      for (const rule of this.primaryRules)
        if (compareAlert(1, rule.op, rule.threshold) && !this.primaryTracks.has(rule.name))
          this.primaryTracks.set(rule.name, { rule, since: health.since, told: false });
      this.primaryDue(now);
      return;
    }
    const failure = this.storeFailure;
    this.storeFailure = undefined;
    for (const t of this.primaryTracks.values())
      if (t.told && failure !== undefined) this.sendPrimary(t.rule, "resolved", failure, now);
    this.primaryTracks.clear();
  }

  private primaryDue(now: number): void {
    const failure = this.storeFailure;
    if (failure === undefined) return;
    for (const t of this.primaryTracks.values()) {
      if (t.told || now - t.since < t.rule.forMs) continue;
      if (this.quiet && t.rule.severity !== "critical") continue;
      t.told = true;
      this.sendPrimary(t.rule, "firing", failure, now);
    }
  }

  private sendPrimary(
    rule: AlertRuleDef,
    status: "firing" | "resolved",
    failure: { cause: StoreFailureCause; error: string; since: number },
    now: number,
  ): void {
    const { title, text } = wordPrimaryStore(rule, status, failure, now);
    const base = this.opts.dashboardUrl?.();
    const msg: AlertMessage = {
      status,
      rule: rule.name,
      severity: rule.severity,
      title,
      text,
      nodes: [],
      at: now,
      ...(base === undefined ? {} : { url: base }),
    };
    const channels = this.channelsFor(rule);
    this.opts.log.info("alert message", { rule: rule.name, status, nodes: 0, channels, title });
    if (channels.length > 0) this.opts.notifier?.deliver(channels, msg);
  }

  private onEvent(e: ClusterEvent): void {
    switch (e.kind) {
      case "node.vitals":
        // Judged when its samples settle (see SETTLE_MS), on the tick.
        this.dirty.set(e.nodeId, this.opts.clock.now() + SETTLE_MS);
        return;
      case "node.state":
      case "node.details":
      case "node.joined": {
        const node = this.opts.registry.get(e.nodeId);
        if (node !== undefined) this.evaluate(node);
        return;
      }
      default:
        return;
    }
  }

  /** `down` counts for a node only once the agents had time to reconnect after our start. */
  private value(metric: string, node: NodeRecord, now: number): number | undefined {
    if (
      metric === "down" &&
      node.state === "down" &&
      node.stateReason === RESTART_REASON &&
      now - this.startedAt < STARTUP_GRACE_MS
    )
      return undefined;
    return alertValue(metric, node, this.opts.version);
  }

  private evaluate(node: NodeRecord): void {
    const now = this.opts.clock.now();
    if (node.state === "left") {
      // Gone on purpose (a reboot, a shutdown, a removal): nothing to tell.
      for (const { def } of this.rules) {
        const k = key(def.name, node.id);
        const t = this.tracks.get(k);
        if (t === undefined) continue;
        this.tracks.delete(k);
        if (t.firing) this.resolve(t, null, now, false);
      }
      return;
    }
    for (const { def, terms } of this.rules) {
      const k = key(def.name, node.id);
      const track = this.tracks.get(k);
      if (!nodeMatches(node, terms)) {
        if (track !== undefined) {
          this.tracks.delete(k);
          if (track.firing) this.resolve(track, null, now, true);
        }
        continue;
      }
      const value = this.value(def.metric, node, now);
      if (value === undefined) {
        // Nothing current to judge by. A firing alert stands (and never resolves on no
        // data); a pending one waits, unless the node is down: then it starts over later.
        if (track?.firing === true) track.clearSince = undefined;
        else if (track !== undefined && node.state === "down") this.tracks.delete(k);
        continue;
      }
      if (compareAlert(value, def.op, def.threshold)) {
        if (track !== undefined) {
          track.value = value;
          track.name = node.name;
          track.clearSince = undefined;
          continue;
        }
        const t: Track = {
          rule: def,
          nodeId: node.id,
          name: node.name,
          legacy: node.legacy,
          since: now,
          value,
          firing: false,
          firedAt: 0,
          notifiedAt: 0,
          held: false,
          title: "",
          clearSince: undefined,
          group: undefined,
        };
        this.tracks.set(k, t);
        if (def.forMs === 0) this.fire([t], now);
      } else if (track !== undefined) {
        if (!track.firing) {
          this.tracks.delete(k);
          continue;
        }
        track.clearSince ??= now;
        if (now - track.clearSince >= def.clearMs) {
          this.tracks.delete(k);
          this.resolve(track, value, now, true);
        }
      }
    }
  }

  private fire(tracks: Track[], now: number): void {
    for (const t of tracks) {
      // Back and down again before its summary was told back: tell it back first.
      for (const g of this.resolving.values()) {
        const i = g.items.findIndex((r) => r.track.rule === t.rule && r.track.nodeId === t.nodeId);
        const held = i >= 0 ? g.items.splice(i, 1)[0] : undefined;
        if (held !== undefined) this.queue(t.rule.name).resolved.push(held);
      }
      t.firing = true;
      t.firedAt = now;
      const { title } = wordAlert(t.rule, "firing", [this.subject(t)], this.extra(t, now));
      t.title = title;
      this.opts.events.emit({
        kind: "alert.firing",
        at: now,
        rule: t.rule.name,
        nodeId: t.nodeId,
        name: t.name,
        severity: t.rule.severity,
        value: t.value,
        threshold: t.rule.threshold,
        title,
      });
      this.queue(t.rule.name).firing.push(t);
    }
  }

  private resolve(t: Track, value: number | null, now: number, tell: boolean): void {
    const { title } = wordAlert(
      t.rule,
      "resolved",
      [{ ...this.subject(t), value }],
      this.extra(t, now),
    );
    this.opts.events.emit({
      kind: "alert.resolved",
      at: now,
      rule: t.rule.name,
      nodeId: t.nodeId,
      name: t.name,
      value,
      firedForMs: now - t.firedAt,
      title,
    });
    // Never told (held in quiet hours, or still waiting in the queue): nothing to take back.
    const out = this.outgoing.get(t.rule.name);
    const queued = out?.firing.indexOf(t) ?? -1;
    if (out !== undefined && queued >= 0) {
      out.firing.splice(queued, 1);
      return;
    }
    if (!tell || t.notifiedAt === 0) return;
    if (t.group !== undefined) {
      // Part of a summary: back together with the others, in one message.
      const g = this.resolving.get(t.group) ?? { first: now, items: [] };
      g.items.push({ track: t, value });
      this.resolving.set(t.group, g);
      return;
    }
    this.queue(t.rule.name).resolved.push({ track: t, value });
  }

  private queue(rule: string): Outgoing {
    let out = this.outgoing.get(rule);
    if (out === undefined) {
      out = { firing: [], resolved: [] };
      this.outgoing.set(rule, out);
    }
    return out;
  }

  private tick(): void {
    const now = this.opts.clock.now();
    try {
      this.judgeSettled(now);
      if (!this.graceOver && now - this.startedAt >= STARTUP_GRACE_MS) {
        // Nodes still down since before our start count from now on.
        for (const node of this.opts.registry.list())
          if (node.state === "down") this.evaluate(node);
        this.graceOver = true;
      }
      this.clearDue(now);
      this.fireDue(now);
      this.repeatDue(now);
      this.groupsBack(now);
      const quiet = inQuietHours(this.opts.settings.quietHours, now);
      if (this.quiet && !quiet) this.releaseHeld();
      this.quiet = quiet;
      this.primaryDue(now);
      this.flush(now);
    } catch (err) {
      this.opts.log.error("alert evaluation failed", { err: describeError(err) });
    }
  }

  private judgeSettled(now: number): void {
    for (const [id, at] of this.dirty) {
      if (at > now) continue;
      this.dirty.delete(id);
      const node = this.opts.registry.get(id);
      if (node !== undefined) this.evaluate(node);
    }
  }

  /** Firing alerts whose condition has stayed false for the rule's `clear` resolve. */
  private clearDue(now: number): void {
    for (const [k, t] of this.tracks) {
      if (!t.firing || t.clearSince === undefined || now - t.clearSince < t.rule.clearMs) continue;
      // Judged again on what the node says now: no data, or true again, is no resolution.
      const node = this.opts.registry.get(t.nodeId);
      const value = node === undefined ? undefined : this.value(t.rule.metric, node, now);
      if (value === undefined || compareAlert(value, t.rule.op, t.rule.threshold)) {
        t.clearSince = undefined;
        continue;
      }
      this.tracks.delete(k);
      this.resolve(t, value, now, true);
    }
  }

  /** Pending conditions whose `for` is over fire, each rule's nodes together. */
  private fireDue(now: number): void {
    const byRule = new Map<AlertRuleDef, Track[]>();
    for (const t of this.tracks.values()) {
      if (t.firing) continue;
      (byRule.get(t.rule) ?? byRule.set(t.rule, []).get(t.rule))?.push(t);
    }
    for (const [rule, pending] of byRule) {
      if (!pending.some((t) => now - t.since >= rule.forMs)) continue;
      // Due now, and those due within a moment: one message rather than a trickle.
      const early = Math.min(GROUP_EARLY_MS, rule.forMs / 4);
      const due = pending.filter((t) => {
        if (now - t.since < rule.forMs - early) return false;
        // Still true on what the node says now (it may have gone quiet meanwhile).
        const node = this.opts.registry.get(t.nodeId);
        const value = node === undefined ? undefined : this.value(rule.metric, node, now);
        return value !== undefined && compareAlert(value, rule.op, rule.threshold);
      });
      this.fire(due, now);
    }
  }

  private repeatDue(now: number): void {
    for (const t of this.tracks.values()) {
      if (!t.firing || t.held || t.notifiedAt === 0 || t.rule.repeatMs === 0) continue;
      if (t.clearSince !== undefined) continue; // on its way out: no reminder
      if (now - t.notifiedAt >= t.rule.repeatMs) this.queue(t.rule.name).firing.push(t);
    }
  }

  /** A summary's nodes that are back go out together once all are back, or after a while. */
  private groupsBack(now: number): void {
    if (this.resolving.size === 0) return;
    // One pass over the tracks for all groups (10 000 nodes: not one pass per group).
    const waiting = new Set<number>();
    for (const t of this.tracks.values()) if (t.group !== undefined) waiting.add(t.group);
    const done = new Set<number>();
    for (const [group, g] of this.resolving) {
      if (waiting.has(group) && now - g.first < RESOLVE_GROUP_MS) continue;
      this.resolving.delete(group);
      done.add(group);
      const rule = g.items[0]?.track.rule;
      if (rule !== undefined) this.queue(rule.name).resolved.push(...g.items);
    }
    // Those still firing after their group was told back are told one by one.
    if (done.size > 0)
      for (const t of this.tracks.values())
        if (t.group !== undefined && done.has(t.group)) t.group = undefined;
  }

  /** Quiet hours are over: what fired meanwhile and still fires goes out now, and what resolved. */
  private releaseHeld(): void {
    for (const t of this.tracks.values()) {
      if (!t.held) continue;
      t.held = false;
      this.queue(t.rule.name).firing.push(t);
    }
    for (const r of this.heldResolved) this.queue(r.track.rule.name).resolved.push(r);
    this.heldResolved = [];
  }

  private flush(now: number): void {
    if (this.outgoing.size === 0) return;
    const outgoing = this.outgoing;
    this.outgoing = new Map();
    for (const out of outgoing.values()) {
      let firing = out.firing.filter((t) => this.tracks.get(key(t.rule.name, t.nodeId)) === t);
      let resolved = out.resolved;
      const rule = firing[0]?.rule ?? resolved[0]?.track.rule;
      if (rule === undefined) continue;
      if (this.quiet) {
        const hold = (t: Track) =>
          rule.severity !== "critical" || (t.legacy && this.opts.settings.legacyQuietHours);
        for (const t of firing) if (hold(t)) t.held = true;
        this.heldResolved.push(...resolved.filter((r) => hold(r.track)));
        firing = firing.filter((t) => !hold(t));
        resolved = resolved.filter((r) => !hold(r.track));
        if (firing.length === 0 && resolved.length === 0) continue;
      }
      // Resolutions first: in one flush they are always older than the firings.
      const messages: Array<
        ["firing" | "resolved", Array<Track | { track: Track; value: number | null }>]
      > = [
        ...this.batches(resolved).map((g): ["resolved", typeof g] => ["resolved", g]),
        ...this.batches(firing).map((g): ["firing", typeof g] => ["firing", g]),
      ];
      for (const [status, group] of messages) {
        try {
          this.send(rule, status, group, now);
        } catch (err) {
          this.opts.log.error("alert message not sent", {
            rule: rule.name,
            status,
            err: describeError(err),
          });
        }
      }
    }
  }

  /** One group for many nodes (a summary), else one per node. */
  private batches<T>(items: T[]): T[][] {
    if (items.length === 0) return [];
    return items.length >= this.opts.settings.summaryAfter ? [items] : items.map((i) => [i]);
  }

  private send(
    rule: AlertRuleDef,
    status: "firing" | "resolved",
    items: Array<Track | { track: Track; value: number | null }>,
    now: number,
  ): void {
    const tracks = items.map((i) => ("track" in i ? i.track : i));
    const subjects = items.map((i) =>
      "track" in i ? { ...this.subject(i.track), value: i.value } : this.subject(i),
    );
    const first = tracks[0];
    // When the trouble began (the first node went down), not when the rule's `for` ran out.
    const since = Math.min(...tracks.map((t) => t.since));
    const { title, text } = wordAlert(rule, status, subjects, {
      primaryVersion: this.opts.version,
      now,
      ...(tracks.length === 0 ? {} : { since }),
    });
    const group = status === "firing" && tracks.length > 1 ? ++this.groups : undefined;
    for (const t of tracks) {
      t.notifiedAt = now;
      if (status === "firing") t.group = group;
    }
    const base = this.opts.dashboardUrl?.();
    const msg: AlertMessage = {
      status,
      rule: rule.name,
      severity: rule.severity,
      title,
      text,
      nodes: subjects.map((s) => ({ id: s.id, name: s.name, value: s.value })),
      at: now,
      ...(base === undefined
        ? {}
        : {
            url:
              tracks.length === 1 && first !== undefined
                ? `${base}#/node/${encodeURIComponent(first.nodeId)}`
                : base,
          }),
    };
    const channels = this.channelsFor(rule);
    this.opts.log.info("alert message", {
      rule: rule.name,
      status,
      nodes: tracks.length,
      channels,
      title,
    });
    if (channels.length > 0) this.opts.notifier?.deliver(channels, msg);
  }

  private channelsFor(rule: AlertRuleDef): string[] {
    const named = rule.channels.length > 0 ? rule.channels : this.opts.settings.channels;
    if (named.includes("none")) return [];
    return named.length > 0 ? [...named] : [...(this.opts.notifier?.channelNames ?? [])];
  }

  private subject(t: Track): Subject {
    const node = this.opts.registry.get(t.nodeId);
    return {
      id: t.nodeId,
      name: t.name,
      value: t.value,
      ...(node === undefined ? {} : { agentVersion: node.agentVersion }),
    };
  }

  private extra(t: Track, now: number) {
    return { primaryVersion: this.opts.version, now, since: t.since };
  }
}
