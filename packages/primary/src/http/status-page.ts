/**
 * The page at `/` until the dashboard (packages/dashboard) is built and
 * served: every node with its state and latest figures, live from the event
 * stream. Self-contained: no request leaves the machine.
 */
import { createHash } from "node:crypto";
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>picluster</title>
<style>
  :root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; }
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; padding: 0 1rem; }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
  .muted { color: var(--muted); }
  table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
  th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid color-mix(in srgb, currentColor 15%, transparent); }
  td.num { font-variant-numeric: tabular-nums; text-align: right; }
  .state { font-weight: 600; }
  .alive { color: var(--ok); } .suspect { color: var(--warn); } .down { color: var(--bad); } .left { color: var(--muted); }
  #conn { float: right; font-size: .85rem; }
</style>
</head>
<body>
<span id="conn" class="muted">connecting…</span>
<h1>picluster</h1>
<div id="summary" class="muted"></div>
<table>
  <thead><tr><th>node</th><th>state</th><th>since</th><th>CPU</th><th>temp</th><th>memory</th><th>disk</th><th>power</th></tr></thead>
  <tbody id="nodes"></tbody>
</table>
<script>
const $ = (id) => document.getElementById(id);
const pct = (used, total) => (total > 0 ? ((used / total) * 100).toFixed(0) + " %" : "–");
const ago = (ms) => { const s = Math.round((Date.now() - ms) / 1000); return s < 60 ? s + " s" : s < 3600 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h"; };
function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
async function refresh() {
  const [cluster, list] = await Promise.all([fetch("/api/cluster").then((r) => r.json()), fetch("/api/nodes").then((r) => r.json())]);
  const s = cluster.states;
  $("summary").textContent = cluster.nodes + " nodes: " + s.alive + " alive, " + s.suspect + " suspect, " + s.down + " down, " + s.left + " left";
  const rows = list.nodes.map((n) => {
    const v = n.vitals, tr = document.createElement("tr");
    const temp = v && v.temps.length ? Math.max(...v.temps.map((t) => t.celsius)).toFixed(1) + " °C" : "–";
    const root = v && (v.disks.find((d) => d.mount === "/") || v.disks[0]);
    const power = v && v.throttling ? (v.throttling.underVoltage ? "under-voltage" : v.throttling.throttled ? "throttled" : "ok") : "–";
    tr.append(cell(n.name), cell(n.state, "state " + n.state), cell(ago(n.stateSince)),
      cell(v ? v.cpu.total.toFixed(0) + " %" : "–", "num"), cell(temp, "num"),
      cell(v ? pct(v.memory.usedBytes, v.memory.totalBytes) : "–", "num"), cell(root ? pct(root.usedBytes, root.sizeBytes) : "–", "num"),
      cell(power, power === "ok" || power === "–" ? "" : "down"));
    return tr;
  });
  $("nodes").replaceChildren(...rows);
}
let pending = false;
function soon() { if (!pending) { pending = true; setTimeout(() => { pending = false; refresh().catch(() => {}); }, 300); } }
const stream = new EventSource("/api/stream");
stream.onopen = () => { $("conn").textContent = "live"; soon(); };
stream.onerror = () => { $("conn").textContent = "reconnecting…"; };
for (const kind of ["node.state", "node.joined", "node.details", "node.throttling", "vitals"]) stream.addEventListener(kind, soon);
refresh().catch(() => {});
setInterval(soon, 10000);
</script>
</body>
</html>
`;

/** The digest of each inline block of the page, for its CSP ('self' alone blocks them). */
function inlineHashes(tag: "style" | "script"): string {
  const out: string[] = [];
  for (const m of STATUS_PAGE.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))) {
    out.push(
      `'sha256-${createHash("sha256")
        .update(m[1] ?? "")
        .digest("base64")}'`,
    );
  }
  return out.join(" ");
}

/** The status page's policy: the dashboard's, plus its own inline style and script. */
export const STATUS_PAGE_CSP = `default-src 'self'; style-src 'self' ${inlineHashes("style")}; script-src 'self' ${inlineHashes("script")}; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;
