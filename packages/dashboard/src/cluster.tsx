import { NODE_STATES } from "@picluster/common/shared";
import { useState } from "preact/hooks";
import { AddNode } from "./add-node.js";
import type { NodeState } from "./api.js";
import { useLive } from "./hooks.js";
import type { LiveNode } from "./live.js";
import { type ClusterView, savedView, saveView } from "./prefs.js";
import { firstSort, SORT_KEYS, type Sort, type SortKey, sorter } from "./sort.js";
import { NodeTable } from "./table.js";
import { Tile } from "./tiles.js";
import { Totals } from "./totals.js";
import { may, useWho } from "./who.js";

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
  const who = useWho();
  const cluster = useLive();
  const [state, setState] = useState<NodeState | "">("");
  const [label, setLabel] = useState("");
  const [search, setSearch] = useState("");
  const [sort, setSort] = useState<Sort>(() => firstSort("name"));
  const [view, setView] = useState<ClusterView>(savedView);
  const all = [...cluster.nodes.values()];
  const counts = Object.fromEntries(
    NODE_STATES.map((s) => [s, all.filter((n) => n.view.state === s).length]),
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
  const tick = Math.floor(now / 10_000);
  const stale = cluster.unreachableSince;
  const items = (n: LiveNode) => ({
    rev: n.rev,
    tick,
    alerts: cluster.alerts.get(n.view.id),
    stale,
    now,
  });
  const choose = (next: ClusterView) => {
    setView(next);
    saveView(next);
  };
  // A second click on the header sorting now turns its order round.
  const sortBy = (key: SortKey) =>
    setSort(sort.key === key ? { key, desc: !sort.desc } : firstSort(key));
  return (
    <section>
      <AlertBanner />
      <Totals />
      <fieldset class="counts" aria-label="nodes by state">
        <button type="button" class={state === "" ? "on" : ""} onClick={() => setState("")}>
          all <b>{all.length}</b>
        </button>
        {NODE_STATES.map((s) => (
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
          value={sort.key}
          onChange={(e) => setSort(firstSort((e.target as HTMLSelectElement).value as SortKey))}
        >
          {SORT_KEYS.map(({ key, label: text }) => (
            <option key={key} value={key}>
              by {text}
            </option>
          ))}
        </select>
        <fieldset class="view-switch" aria-label="Show as">
          {(["tiles", "table"] as const).map((v) => (
            <button
              type="button"
              key={v}
              class={view === v ? "on" : ""}
              aria-pressed={view === v}
              onClick={() => choose(v)}
              data-testid={`view-${v}`}
            >
              {v === "tiles" ? "Tiles" : "Table"}
            </button>
          ))}
        </fieldset>
        {may(who, "admin") && <AddNode />}
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
          No nodes yet. Add one with the button above, or <code>picluster node add NAME</code> on
          the primary.
        </p>
      )}
      {view === "table" ? (
        all.length > 0 && <NodeTable nodes={shown} sort={sort} onSort={sortBy} items={items} />
      ) : (
        <div class="tiles">
          {shown.map((n) => (
            <Tile key={n.view.id} n={n} {...items(n)} />
          ))}
        </div>
      )}
    </section>
  );
}
