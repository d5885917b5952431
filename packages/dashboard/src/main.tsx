import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ClusterPage } from "./cluster.js";
import { EventsPage } from "./events.js";
import { useLive } from "./hooks.js";
import { NodePage } from "./node.js";
import "./style.css";

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

function App() {
  const hash = useHash();
  const node = /^#\/node\/(.+)$/.exec(hash)?.[1];
  const page = node !== undefined ? "node" : hash === "#/events" ? "events" : "cluster";
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
          <a href="#/events" aria-current={page === "events" ? "page" : undefined}>
            Events
          </a>
        </nav>
        <StreamBadge />
      </header>
      <main>
        {node !== undefined ? (
          <NodePage id={decodeURIComponent(node)} />
        ) : page === "events" ? (
          <EventsPage />
        ) : (
          <ClusterPage />
        )}
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root !== null) render(<App />, root);
