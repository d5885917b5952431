/** The cluster as tiles: one card per node with its state, figures and CPU sparkline. */

import { ago, clockTime, duration, nodeName, pct } from "@picluster/common/shared";
import { memo } from "preact/compat";
import type { FiringAlert, LiveNode } from "./live.js";
import { Sparkline } from "./sparkline.js";

export interface NodeItemProps {
  n: LiveNode;
  /** The node's change count: an item whose node did not change is not drawn again… */
  rev: number;
  /** …until the clock moves on (every 10 s, for "since" and uptime)… */
  tick: number;
  /** …or its alerts change… */
  alerts: FiringAlert[] | undefined;
  /** …or the primary goes out of reach or comes back (since when it is out of reach). */
  stale: number | undefined;
  now: number;
}

/** Items are drawn again only when one of these changed. */
export function sameItem(a: NodeItemProps, b: NodeItemProps): boolean {
  return (
    a.n === b.n &&
    a.rev === b.rev &&
    a.tick === b.tick &&
    a.alerts === b.alerts &&
    a.stale === b.stale
  );
}

/** A node not connected: its figures are the last it sent, not its present. */
export function isLastKnown(n: LiveNode): boolean {
  return n.view.state === "down" || n.view.state === "left";
}

/** Uptime now: it runs on while the node is alive, and stops at the last report otherwise. */
export function uptimeOf(n: LiveNode, now: number): number | null {
  if (n.uptimeS === null) return null;
  return n.uptimeS + (n.view.state === "alive" ? (now - n.uptimeAt) / 1000 : 0);
}

/** "alive · 3m 2s", "down · last seen 4m 10s ago", or while the primary is out of reach, that. */
export function stateText(n: LiveNode, now: number, stale: number | undefined): string {
  if (stale !== undefined) return `unreachable since ${clockTime(stale)}`;
  if (isLastKnown(n)) return `${n.view.state} · last seen ${ago(n.seenAt, now)} ago`;
  return `${n.view.state} · ${ago(n.view.stateSince, now)}`;
}

/**
 * One node. Memoised: the once-a-second vitals batch touches only the nodes
 * that reported, and a page of 1 000 tiles redraws just those.
 */
export const Tile = memo(TileView, sameItem);

function TileView({ n, now, alerts, stale }: NodeItemProps) {
  const v = n.view;
  const uptime = uptimeOf(n, now);
  const hot = (n.figures.temp ?? 0) >= 80;
  const lastKnown = isLastKnown(n);
  return (
    <a
      class={`tile state-${v.state}${stale === undefined ? "" : " stale"}`}
      href={`#/node/${encodeURIComponent(v.id)}`}
      data-node={v.name}
      data-state={v.state}
      data-stale={stale === undefined ? undefined : "true"}
    >
      <div class="tile-head">
        <span class="dot" aria-hidden="true" />
        <span class="name">{nodeName(v)}</span>
        <span
          class="since"
          title={
            stale === undefined
              ? v.stateReason
              : `the primary is out of reach; last known state: ${v.state}`
          }
        >
          {stale === undefined
            ? `${v.state} · ${ago(v.stateSince, now)}`
            : `unreachable since ${clockTime(stale)}`}
        </span>
      </div>
      {lastKnown && (
        <p class="seen">
          <span class="tag">last known</span>{" "}
          <span data-testid="last-seen">last seen {ago(n.seenAt, now)} ago</span>
        </p>
      )}
      <dl class={`figures${lastKnown ? " last-known" : ""}`}>
        <div>
          <dt>CPU</dt>
          <dd>{pct(n.figures.cpu)}</dd>
        </div>
        <div>
          <dt>Temp</dt>
          <dd class={hot ? "warn" : ""}>
            {n.figures.temp === null ? "–" : `${n.figures.temp.toFixed(0)} °C`}
          </dd>
        </div>
        <div>
          <dt>RAM</dt>
          <dd>{pct(n.figures.mem)}</dd>
        </div>
        <div>
          <dt>Disk</dt>
          <dd>{pct(n.figures.disk)}</dd>
        </div>
        <div>
          <dt>Up</dt>
          <dd>{duration(uptime)}</dd>
        </div>
      </dl>
      {alerts !== undefined && alerts.length > 0 && (
        <ul class="tile-alerts" data-testid="tile-alerts">
          {alerts.map((a) => (
            <li key={a.rule} class={`alert-${a.severity}`}>
              {a.title}
            </li>
          ))}
        </ul>
      )}
      <Sparkline values={n.cpuHistory} />
      {Object.keys(v.labels).length > 0 && (
        <div class="labels">
          {Object.entries(v.labels).map(([k, val]) => (
            <span class="label" key={k}>
              {k}={val}
            </span>
          ))}
        </div>
      )}
    </a>
  );
}
