import { memo } from "preact/compat";
import { useState } from "preact/hooks";
import type { NodeState } from "./api.js";
import { ago, duration, nodeName, pct } from "./format.js";
import { useLive } from "./hooks.js";
import type { FiringAlert, LiveNode } from "./live.js";
import { Sparkline } from "./sparkline.js";

const STATES: NodeState[] = ["alive", "suspect", "down", "left"];
type SortKey = "name" | "state" | "cpu" | "temp";
const STATE_ORDER: Record<NodeState, number> = { down: 0, suspect: 1, left: 2, alive: 3 };

function sorter(key: SortKey) {
  return (a: LiveNode, b: LiveNode): number => {
    if (key === "state") return STATE_ORDER[a.view.state] - STATE_ORDER[b.view.state];
    if (key === "cpu") return (b.figures.cpu ?? -1) - (a.figures.cpu ?? -1);
    if (key === "temp") return (b.figures.temp ?? -1) - (a.figures.temp ?? -1);
    return a.view.name.localeCompare(b.view.name, "en", { numeric: true });
  };
}

interface TileProps {
  n: LiveNode;
  /** The node's change count: a tile whose node did not change is not drawn again… */
  rev: number;
  /** …until the clock moves on (every 10 s, for "since" and uptime)… */
  tick: number;
  /** …or its alerts change. */
  alerts: FiringAlert[] | undefined;
  now: number;
}

/**
 * One node. Memoised: the once-a-second vitals batch touches only the nodes
 * that reported, and a page of 1 000 tiles redraws just those.
 */
const Tile = memo(
  TileView,
  (a: TileProps, b: TileProps) =>
    a.n === b.n && a.rev === b.rev && a.tick === b.tick && a.alerts === b.alerts,
);

function TileView({ n, now, alerts }: TileProps) {
  const v = n.view;
  const uptime =
    n.uptimeS === null ? null : n.uptimeS + (v.state === "alive" ? (now - n.uptimeAt) / 1000 : 0);
  const hot = (n.figures.temp ?? 0) >= 80;
  return (
    <a
      class={`tile state-${v.state}`}
      href={`#/node/${encodeURIComponent(v.id)}`}
      data-node={v.name}
      data-state={v.state}
    >
      <div class="tile-head">
        <span class="dot" aria-hidden="true" />
        <span class="name">{nodeName(v)}</span>
        <span class="since" title={v.stateReason}>
          {v.state} · {ago(v.stateSince, now)}
        </span>
      </div>
      <dl class="figures">
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

/** What fires now, across the cluster, above the tiles. */
function AlertBanner() {
  const cluster = useLive();
  const firing = [...cluster.alerts.entries()].flatMap(([id, list]) =>
    list.map((a) => ({ ...a, id })),
  );
  if (firing.length === 0) return null;
  const critical = firing.some((a) => a.severity === "critical");
  return (
    <section
      class={`alert-banner ${critical ? "alert-critical" : "alert-warning"}`}
      aria-label="alerts firing"
      data-testid="alert-banner"
    >
      <b>
        {firing.length} alert{firing.length === 1 ? "" : "s"} firing
      </b>
      <ul>
        {firing.slice(0, 8).map((a) => (
          <li key={`${a.rule}-${a.id}`}>
            <a href={`#/node/${encodeURIComponent(a.id)}`}>{a.title}</a>
          </li>
        ))}
        {firing.length > 8 && <li>and {firing.length - 8} more</li>}
      </ul>
    </section>
  );
}

/**
 * The selector for the nodes on show: `all`, the one state or label filter
 * (it keeps meaning what it says when nodes come and go), else their names.
 */
function selectorFor(
  shown: LiveNode[],
  filter: { state: string; label: string; q: string },
): string {
  const { state, label, q } = filter;
  if (q === "" && label === "") return state === "" ? "all" : state;
  if (q === "" && state === "") return label;
  return shown.map((n) => n.view.name).join(",");
}

export function ClusterPage() {
  const cluster = useLive();
  const [state, setState] = useState<NodeState | "">("");
  const [label, setLabel] = useState("");
  const [search, setSearch] = useState("");
  const [sort, setSort] = useState<SortKey>("name");
  const all = [...cluster.nodes.values()];
  const counts = Object.fromEntries(
    STATES.map((s) => [s, all.filter((n) => n.view.state === s).length]),
  );
  const labels = [
    ...new Set(all.flatMap((n) => Object.entries(n.view.labels).map(([k, v]) => `${k}=${v}`))),
  ].sort();
  const q = search.trim().toLowerCase();
  const shown = all
    .filter((n) => state === "" || n.view.state === state)
    .filter((n) => {
      if (label === "") return true;
      const [k, v] = label.split("=");
      return k !== undefined && n.view.labels[k] === v;
    })
    .filter((n) => q === "" || n.view.name.toLowerCase().includes(q))
    .sort(sorter(sort));
  const now = Date.now();
  return (
    <section>
      <AlertBanner />
      <fieldset class="counts" aria-label="nodes by state">
        <button type="button" class={state === "" ? "on" : ""} onClick={() => setState("")}>
          all <b>{all.length}</b>
        </button>
        {STATES.map((s) => (
          <button
            type="button"
            key={s}
            class={`count-${s} ${state === s ? "on" : ""}`}
            onClick={() => setState(state === s ? "" : s)}
            data-testid={`count-${s}`}
          >
            {s} <b>{counts[s]}</b>
          </button>
        ))}
      </fieldset>
      <div class="filters">
        <input
          type="search"
          placeholder="Search by name"
          aria-label="Search by name"
          value={search}
          onInput={(e) => setSearch((e.target as HTMLInputElement).value)}
        />
        <select
          aria-label="Filter by label"
          value={label}
          onChange={(e) => setLabel((e.target as HTMLSelectElement).value)}
        >
          <option value="">any label</option>
          {labels.map((l) => (
            <option key={l} value={l}>
              {l}
            </option>
          ))}
        </select>
        <select
          aria-label="Sort"
          value={sort}
          onChange={(e) => setSort((e.target as HTMLSelectElement).value as SortKey)}
        >
          <option value="name">by name</option>
          <option value="state">by state</option>
          <option value="cpu">by CPU</option>
          <option value="temp">by temperature</option>
        </select>
      </div>
      {shown.length > 0 && (
        <p class="selection">
          <a href={`#/tasks?on=${encodeURIComponent(selectorFor(shown, { state, label, q }))}`}>
            Run a task on{" "}
            {shown.length === all.length
              ? "every node"
              : shown.length === 1
                ? shown[0]?.view.name
                : `these ${shown.length} nodes`}
          </a>
        </p>
      )}
      {cluster.error !== undefined && <p class="error">Cannot read the cluster: {cluster.error}</p>}
      {all.length === 0 && cluster.error === undefined && (
        <p class="empty">
          No nodes yet. Join one with <code>picluster node add NAME</code>.
        </p>
      )}
      <div class="tiles">
        {shown.map((n) => (
          <Tile
            key={n.view.id}
            n={n}
            rev={n.rev}
            tick={Math.floor(now / 10_000)}
            alerts={cluster.alerts.get(n.view.id)}
            now={now}
          />
        ))}
      </div>
    </section>
  );
}
