import { useEffect, useState } from "preact/hooks";
import { getJson } from "./api.js";
import { live } from "./live.js";

/** Re-render on every change of the live cluster. */
export function useLive(): typeof live {
  const [, setVersion] = useState(0);
  useEffect(() => live.subscribe(() => setVersion(live.version)), []);
  return live;
}

/** Data from the API for `path`, fetched again when `path` or `version` changes. */
export function useJson<T>(
  path: string | undefined,
  refreshMs?: number,
  /** Fetched again whenever this changes (an event said the data changed). */
  version = 0,
): { data?: T; error?: string } {
  const [state, setState] = useState<{ data?: T; error?: string }>({});
  useEffect(() => {
    if (path === undefined) return;
    let alive = true;
    const load = () =>
      getJson<T>(path).then(
        (data) => alive && setState({ data }),
        (err: unknown) =>
          alive && setState({ error: err instanceof Error ? err.message : String(err) }),
      );
    void load();
    const timer = refreshMs === undefined ? undefined : setInterval(load, refreshMs);
    return () => {
      alive = false;
      if (timer !== undefined) clearInterval(timer);
    };
  }, [path, refreshMs, version]);
  return state;
}

/** Light or dark as the system says now: charts read their colours from CSS and redraw on a change. */
export function useColorScheme(): "light" | "dark" {
  const query = "(prefers-color-scheme: dark)";
  const [dark, setDark] = useState(() => matchMedia(query).matches);
  useEffect(() => {
    const list = matchMedia(query);
    const on = () => setDark(list.matches);
    list.addEventListener("change", on);
    return () => list.removeEventListener("change", on);
  }, []);
  return dark ? "dark" : "light";
}
