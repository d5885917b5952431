/**
 * The cluster as a dense table, a row per node: state, CPU, RAM and disk as
 * bars, temperature, load, uptime, power flags and labels; sorted by a click
 * on a header. Rows are memoised like tiles.
 */

import { duration, nodeName, pct } from "@picluster/common/shared";
import { Fragment } from "preact";
import { memo } from "preact/compat";
import type { Throttling } from "./api.js";
import type { LiveNode } from "./live.js";
import type { Sort, SortKey } from "./sort.js";
import { isLastKnown, type NodeItemProps, sameItem, stateText, uptimeOf } from "./tiles.js";

/** The columns, in order; `sort` when a click on the header sorts by it. */
const COLUMNS: ReadonlyArray<{ col: string; title: string; sort?: SortKey }> = [
  { col: "name", title: "Name", sort: "name" },
  { col: "state", title: "State", sort: "state" },
  { col: "cpu", title: "CPU", sort: "cpu" },
  { col: "mem", title: "RAM", sort: "mem" },
  { col: "disk", title: "Disk", sort: "disk" },
  { col: "temp", title: "Temp", sort: "temp" },
  { col: "load", title: "Load", sort: "load" },
  { col: "uptime", title: "Uptime", sort: "uptime" },
  { col: "power", title: "Power" },
  { col: "labels", title: "Labels" },
];

/** A percentage as a bar with its figure; amber from 80 %, red from 90 %. */
function Bar({ value }: { value: number | null }) {
  if (value === null) return <span class="num">–</span>;
  const level = value >= 90 ? " crit" : value >= 80 ? " warn" : "";
  return (
    <span class="bar-cell">
      <span class={`bar${level}`} aria-hidden="true">
        <span class="fill" style={{ width: `${Math.min(100, Math.max(0, value))}%` }} />
      </span>
      <span class="num">{pct(value)}</span>
    </span>
  );
}

const FLAGS: ReadonlyArray<[keyof Throttling, string]> = [
  ["underVoltage", "under-voltage"],
  ["throttled", "throttled"],
  ["freqCapped", "capped"],
  ["softTempLimit", "soft temp limit"],
];

/** A Pi's power and throttling flags now; "–" for a node that reports none (not a Pi). */
function Power({ flags }: { flags: Throttling | null }) {
  if (flags === null) return <>–</>;
  const on = FLAGS.filter(([flag]) => flags[flag]);
  if (on.length === 0) return <span class="muted">ok</span>;
  return (
    <span class="flags">
      {on.map(([flag, text]) => (
        <Fragment key={flag}>
          <span class={`flag flag-${flag === "underVoltage" ? "crit" : "warn"}`}>{text}</span>{" "}
        </Fragment>
      ))}
    </span>
  );
}

const Row = memo(RowView, sameItem);

function RowView({ n, now, stale }: NodeItemProps) {
  const v = n.view;
  const f = n.figures;
  const lastKnown = isLastKnown(n);
  return (
    <tr
      class={`state-${v.state}${lastKnown ? " last-known" : ""}${stale === undefined ? "" : " stale"}`}
      data-node={v.name}
      data-state={v.state}
      data-stale={stale === undefined ? undefined : "true"}
    >
      <td data-col="name">
        <a href={`#/node/${encodeURIComponent(v.id)}`}>
          <span class="dot" aria-hidden="true" /> {nodeName(v)}
        </a>
      </td>
      <td data-col="state" title={v.stateReason}>
        {stateText(n, now, stale)}
      </td>
      <td data-col="cpu">
        <Bar value={f.cpu} />
      </td>
      <td data-col="mem">
        <Bar value={f.mem} />
      </td>
      <td data-col="disk">
        <Bar value={f.disk} />
      </td>
      <td data-col="temp" class={(f.temp ?? 0) >= 80 ? "warn" : ""}>
        {f.temp === null ? "–" : `${f.temp.toFixed(0)} °C`}
      </td>
      <td data-col="load">{f.load1 === null ? "–" : f.load1.toFixed(2)}</td>
      <td data-col="uptime">{duration(uptimeOf(n, now))}</td>
      <td data-col="power">
        <Power flags={n.throttling} />
      </td>
      <td data-col="labels">
        {Object.entries(v.labels).map(([k, val]) => (
          <span class="label" key={k}>
            {k}={val}
          </span>
        ))}
      </td>
    </tr>
  );
}

export function NodeTable({
  nodes,
  sort,
  onSort,
  items,
}: {
  nodes: LiveNode[];
  sort: Sort;
  onSort: (key: SortKey) => void;
  /** Each node's item props but the node itself. */
  items: (n: LiveNode) => Omit<NodeItemProps, "n">;
}) {
  return (
    <div class="table-wrap">
      <table class="nodes-table">
        <thead>
          <tr>
            {COLUMNS.map(({ col, title, sort: key }) => (
              <th
                key={col}
                data-col={col}
                scope="col"
                aria-sort={
                  key === undefined
                    ? undefined
                    : sort.key !== key
                      ? "none"
                      : sort.desc
                        ? "descending"
                        : "ascending"
                }
              >
                {key === undefined ? (
                  title
                ) : (
                  <button type="button" class="sort" onClick={() => onSort(key)}>
                    {title}
                    <span class="arrow" aria-hidden="true">
                      {sort.key === key ? (sort.desc ? " ▼" : " ▲") : ""}
                    </span>
                  </button>
                )}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {nodes.map((n) => (
            <Row key={n.view.id} n={n} {...items(n)} />
          ))}
        </tbody>
      </table>
    </div>
  );
}
