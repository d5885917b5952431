import { useEffect, useState } from "preact/hooks";
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
      fetch(path, { headers: { accept: "application/json" } })
        .then(async (res) => {
          const body = (await res.json()) as T & { error?: { message?: string } };
          if (!alive) return;
          if (!res.ok) setState({ error: body.error?.message ?? `${res.status}` });
          else setState({ data: body });
        })
        .catch((err: unknown) => alive && setState({ error: String(err) }));
    void load();
    const timer = refreshMs === undefined ? undefined : setInterval(load, refreshMs);
    return () => {
      alive = false;
      if (timer !== undefined) clearInterval(timer);
    };
  }, [path, refreshMs, version]);
  return state;
}
