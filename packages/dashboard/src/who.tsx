/**
 * Who the page is: its token's name and role (GET /api/whoami), the
 * sign-in page when reads need a token, the header's badge with "Sign out",
 * and what each role may see of the controls (docs/security.md).
 */
import { useEffect, useState } from "preact/hooks";
import { ApiError, apiToken, getJson, setApiToken, TOKEN_EVENT, type Who } from "./api.js";

export type WhoState =
  | { state: "loading" }
  | { state: "known"; who: Who }
  /** Reads need a (valid) token: `reason` is the primary's word. */
  | { state: "signin"; reason: string };

let current: WhoState = { state: "loading" };
const listeners = new Set<() => void>();
let asking: Promise<void> | undefined;

function set(next: WhoState): void {
  current = next;
  for (const l of listeners) l();
}

/** Ask the primary who the page's token is (again). */
export function refreshWho(): Promise<void> {
  asking ??= getJson<Who>("/api/whoami")
    .then(
      (who) => set({ state: "known", who }),
      (err: unknown) => {
        if (err instanceof ApiError && err.status === 401)
          set({ state: "signin", reason: err.message });
        // Unreachable: the stream's badge says so; keep what was known.
        else if (current.state === "loading")
          set({ state: "known", who: { name: "anonymous", role: "anonymous" } });
      },
    )
    .finally(() => {
      asking = undefined;
    });
  return asking;
}

addEventListener(TOKEN_EVENT, () => void refreshWho());

export function useWho(): WhoState {
  const [state, setState] = useState(current);
  useEffect(() => {
    const on = () => setState(current);
    listeners.add(on);
    if (current.state === "loading") void refreshWho();
    else on();
    return () => {
      listeners.delete(on);
    };
  }, []);
  return state;
}

const RANK = { anonymous: -1, viewer: 0, operator: 1, admin: 2 } as const;

/**
 * Whether to show a control that needs `need`. Without a token (the API on
 * loopback) controls show and ask for the token when used, as they always
 * did; a signed-in viewer sees no Run, an operator no Remove or Add node.
 */
export function may(state: WhoState, need: "operate" | "admin"): boolean {
  if (state.state !== "known" || state.who.role === "anonymous") return true;
  return RANK[state.who.role] >= (need === "operate" ? RANK.operator : RANK.admin);
}

/** The header's badge: who the page is, and Sign out; or Sign in. */
export function WhoBadge() {
  const state = useWho();
  if (state.state !== "known") return null;
  const { who } = state;
  if (who.role === "anonymous")
    return (
      <a class="who who-anonymous" href="#/signin" data-testid="signin-link">
        Sign in
      </a>
    );
  const name = who.name === "http-token" ? "the admin token" : who.name;
  return (
    <span class="who" data-testid="who">
      <span title={who.scope === undefined ? "every node" : `only ${who.scope}`}>
        {name} · {who.role}
        {who.scope === undefined ? "" : ` · ${who.scope}`}
      </span>{" "}
      <button
        type="button"
        class="link"
        data-testid="signout"
        onClick={() => {
          setApiToken("");
          location.hash = "#/";
        }}
      >
        Sign out
      </button>
    </span>
  );
}

/** The sign-in page: a token (or a link ending #token=…); the primary says whether it is good. */
export function SignIn({ reason }: { reason?: string }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    const before = apiToken();
    setApiToken(token.trim());
    await refreshWho();
    setBusy(false);
    const refused =
      current.state === "signin"
        ? current.reason
        : current.state === "known"
          ? current.who.refused
          : undefined;
    if (refused !== undefined) {
      setError(refused);
      setApiToken(before);
      return;
    }
    setToken("");
    location.hash = "#/";
  };
  return (
    <section class="signin" data-testid="signin">
      <h1>Sign in</h1>
      <p>
        {reason === undefined
          ? "Paste an API token to act as it on this page."
          : "This primary shows its cluster to token holders only."}{" "}
        Ask whoever runs it for one (<code>picluster token add NAME --role viewer</code>), or open
        the link they gave you.
      </p>
      <form onSubmit={(e) => void submit(e)}>
        <label>
          Token{" "}
          <input
            type="password"
            class="signin-token"
            autoComplete="off"
            value={token}
            onInput={(e) => setToken((e.target as HTMLInputElement).value)}
            data-testid="signin-token"
            required
          />
        </label>{" "}
        <button type="submit" class="primary" disabled={busy} data-testid="signin-submit">
          Sign in
        </button>
      </form>
      {error !== undefined && (
        <p class="error" role="alert" data-testid="signin-error">
          {error}
        </p>
      )}
    </section>
  );
}
