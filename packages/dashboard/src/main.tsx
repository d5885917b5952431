import { clockTime } from "@picluster/common/shared";
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { AlertsPage } from "./alerts.js";
import { adoptTokenFromHash } from "./api.js";
import { ChecksPage } from "./checks.js";
import { ClusterPage } from "./cluster.js";
import { EventsPage } from "./events.js";
import { useLive } from "./hooks.js";
import { NodePage } from "./node.js";
import "./style.css";
import { JobPage, JobsPage } from "./jobs.js";
import { RunPage, TasksPage } from "./tasks.js";
import { SignIn, useWho, WhoBadge } from "./who.js";

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function StreamBadge() {
  const { status } = useLive();
  const text =
    status === "live"
      ? "live"
      : status === "connecting"
        ? "connecting…"
        : "stream lost, reconnecting…";
  return (
    <span class={`stream stream-${status}`} role="status" data-testid="stream-status">
      {text}
    </span>
  );
}

/**
 * The scale-out mode: how many primaries, which one leads, and this one's
 * link to NATS; each primary, its agents and address in the tooltip.
 * Nothing when embedded.
 */
function PrimariesBadge() {
  const { scaleOut } = useLive();
  if (scaleOut === undefined) return null;
  const n = scaleOut.primaries.length;
  const ok = scaleOut.nats.connected && scaleOut.leader !== null;
  const text = scaleOut.nats.connected
    ? `${n} primar${n === 1 ? "y" : "ies"} · leader ${scaleOut.leader ?? "none yet"}`
    : `${scaleOut.self}: NATS unreachable`;
  const title = [
    `This page: ${scaleOut.self}${scaleOut.nats.server === null ? "" : ` (NATS ${scaleOut.nats.server})`}`,
    ...scaleOut.primaries.map(
      (p) =>
        `${p.name}${p.leader ? " (leader)" : ""}: ${p.sessions} agent${p.sessions === 1 ? "" : "s"}, ${p.agentAddress}`,
    ),
  ].join("\n");
  return (
    <span
      class={`primaries ${ok ? "primaries-ok" : "primaries-trouble"}`}
      title={title}
      data-testid="primaries"
    >
      {text}
    </span>
  );
}

/** Why the primary cannot store, in the words of its alert (wording.ts). */
const STORE_WORDS: Record<string, string> = {
  disk_full: "The primary's disk is full",
  read_only: "The primary's data directory is read-only",
  io_error: "The primary's disk reports I/O errors",
  busy: "The primary's database is locked by another process",
};

function StoreBanner() {
  const { store } = useLive();
  if (store.ok) return null;
  return (
    <div class="store-banner" role="alert" data-testid="store-banner">
      {STORE_WORDS[store.cause] ?? "The primary cannot write its database"}: nothing new is being
      stored (since {new Date(store.since).toLocaleTimeString()}). The live view goes on; agents
      keep their samples until it can.
    </div>
  );
}

/** The stream has been lost for a while: what the page shows is only the last known. */
function Unreachable() {
  const { unreachableSince } = useLive();
  if (unreachableSince === undefined) return null;
  return (
    <p class="unreachable" role="alert" data-testid="unreachable">
      Primary unreachable since {clockTime(unreachableSince)}: the states and figures shown are the
      last known, and may no longer be true. The page reconnects by itself.
    </p>
  );
}

function App() {
  const hash = useHash();
  const who = useWho();
  const node = /^#\/node\/(.+)$/.exec(hash)?.[1];
  const run = /^#\/tasks\/(\d+)$/.exec(hash)?.[1];
  const tasks = /^#\/tasks(?:\?(.*))?$/.exec(hash);
  const job = /^#\/jobs\/(\d+)$/.exec(hash)?.[1];
  const page =
    node !== undefined
      ? "node"
      : run !== undefined || tasks !== null
        ? "tasks"
        : job !== undefined || hash === "#/jobs"
          ? "jobs"
          : hash === "#/events"
            ? "events"
            : hash === "#/alerts"
              ? "alerts"
              : hash === "#/checks"
                ? "checks"
                : "cluster";
  return (
    <>
      <header class="top">
        <a href="#/" class="brand">
          picluster
        </a>
        <nav>
          <a href="#/" aria-current={page === "cluster" ? "page" : undefined}>
            Cluster
          </a>
          <a href="#/tasks" aria-current={page === "tasks" ? "page" : undefined}>
            Tasks
          </a>
          <a href="#/jobs" aria-current={page === "jobs" ? "page" : undefined}>
            Jobs
          </a>
          <a href="#/events" aria-current={page === "events" ? "page" : undefined}>
            Events
          </a>
          <a href="#/checks" aria-current={page === "checks" ? "page" : undefined}>
            Checks
          </a>
          <a href="#/alerts" aria-current={page === "alerts" ? "page" : undefined}>
            Alerts
          </a>
        </nav>
        <PrimariesBadge />
        <StreamBadge />
        <WhoBadge />
      </header>
      <StoreBanner />
      <main>
        <Unreachable />
        {who.state === "signin" ? (
          <SignIn reason={who.reason} />
        ) : hash === "#/signin" ? (
          <SignIn />
        ) : node !== undefined ? (
          <NodePage id={decodeURIComponent(node)} />
        ) : run !== undefined ? (
          <RunPage key={run} id={Number(run)} />
        ) : tasks !== null ? (
          <TasksPage query={new URLSearchParams(tasks[1] ?? "")} />
        ) : job !== undefined ? (
          <JobPage key={job} id={Number(job)} />
        ) : page === "jobs" ? (
          <JobsPage />
        ) : page === "events" ? (
          <EventsPage />
        ) : page === "alerts" ? (
          <AlertsPage />
        ) : page === "checks" ? (
          <ChecksPage />
        ) : (
          <ClusterPage />
        )}
      </main>
    </>
  );
}

adoptTokenFromHash();
const root = document.getElementById("app");
if (root !== null) render(<App />, root);
