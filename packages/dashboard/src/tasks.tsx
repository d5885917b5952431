/**
 * Tasks on the page: run an allowed task on a selection of nodes (with a
 * confirmation before anything disruptive), the recent runs, and one run's
 * per-node progress and output, live from the event stream.
 */

import {
  ago,
  duration,
  nodeMatches,
  parseSelector,
  type SelectorTerm,
} from "@picluster/common/shared";
import { useEffect, useState } from "preact/hooks";
import {
  ApiError,
  apiToken,
  type CatalogTask,
  followEvents,
  getJson,
  type NodeResult,
  sendJson,
  setApiToken,
  type TaskRun,
} from "./api.js";
import { useJson, useLive } from "./hooks.js";
import { type LiveNode, live } from "./live.js";
import { Modal } from "./modal.js";
import { may, useWho } from "./who.js";

/**
 * The nodes a selector picks, read by the primary's own parser: `all`, a
 * state, `label=value` or a name; several joined by commas pick any of
 * them. A selector it cannot read picks none.
 */
export function pickNodes(nodes: LiveNode[], selector: string): LiveNode[] {
  let terms: SelectorTerm[];
  try {
    terms = parseSelector(selector);
  } catch {
    return [];
  }
  return nodes.filter(({ view }) => nodeMatches(view, terms));
}

/** "pi-1, pi-2, pi-3 and 7 more" */
function someNames(names: string[], max = 8): string {
  if (names.length <= max) return names.join(", ");
  return `${names.slice(0, max).join(", ")} and ${names.length - max} more`;
}

export function TokenForm({
  reason,
  onSaved,
  purpose = "run tasks and see their output",
}: {
  reason: string;
  onSaved: () => void;
  /** What the token is wanted for, in the form's words. */
  purpose?: string;
}) {
  const [value, setValue] = useState("");
  return (
    <form
      class="token-form"
      onSubmit={(e) => {
        e.preventDefault();
        setApiToken(value.trim());
        onSaved();
      }}
    >
      <p>
        {reason}. Paste the API token (<code>[http] token</code> in the primary's config; the link{" "}
        <code>picluster up</code> prints carries it) to {purpose} from this browser.
      </p>
      <input
        type="password"
        aria-label="API token"
        autoComplete="off"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
      />
      <button type="submit" disabled={value.trim() === ""}>
        Save token
      </button>
    </form>
  );
}

function ConfirmDialog({
  task,
  names,
  batch,
  waitAlive,
  onCancel,
  onConfirm,
}: {
  task: CatalogTask;
  names: string[];
  batch: number;
  waitAlive: boolean;
  onCancel: () => void;
  onConfirm: () => void;
}) {
  const what = `${task.name} ${names.length} node${names.length === 1 ? "" : "s"}`;
  return (
    <Modal labelledBy="confirm-title" onCancel={onCancel}>
      <h2 id="confirm-title">Run {what}?</h2>
      <p>
        <b>{task.name}</b> is disruptive: {task.description || "the nodes stop what they are doing"}
        .
      </p>
      <p>On: {someNames(names)}.</p>
      <p class="muted">
        {batch} node{batch === 1 ? "" : "s"} at a time
        {waitAlive ? ", waiting until they are back before the next" : ""}; stops at the first
        failure.
      </p>
      <div class="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={onConfirm} data-testid="confirm-run">
          {task.name} {names.length} node{names.length === 1 ? "" : "s"}
        </button>
      </div>
    </Modal>
  );
}

function RunForm({ initialOn, initialTask }: { initialOn: string; initialTask: string }) {
  const cluster = useLive();
  const { data: catalog, error: catalogError } = useJson<{ tasks: CatalogTask[] }>(
    "/api/tasks/catalog",
    10_000,
  );
  const [taskName, setTaskName] = useState(initialTask);
  const [on, setOn] = useState(initialOn);
  const [args, setArgs] = useState<Record<string, string>>({});
  const [batch, setBatch] = useState("");
  const [waitAlive, setWaitAlive] = useState(true);
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string>();
  const [needToken, setNeedToken] = useState<string>();
  const [busy, setBusy] = useState(false);

  const tasks = catalog?.tasks ?? [];
  const task = tasks.find((t) => t.name === taskName) ?? tasks[0];
  const picked = pickNodes([...cluster.nodes.values()], on);
  const allowed = new Set(task?.nodes ?? []);
  const runnable = picked.filter((n) => n.view.state === "alive" && allowed.has(n.view.name));
  const notAllowed = picked.filter((n) => !allowed.has(n.view.name));
  const away = picked.filter((n) => n.view.state !== "alive" && allowed.has(n.view.name));
  const disruptive = task?.disruptive ?? false;
  const batchSize = batch === "" ? (disruptive ? 1 : undefined) : Number(batch);

  const start = async () => {
    if (task === undefined) return;
    setBusy(true);
    setError(undefined);
    try {
      const run = await sendJson<TaskRun>("POST", "/api/tasks", {
        task: task.name,
        on,
        args: Object.fromEntries(
          task.args.map((a) => [a.name, args[a.name] ?? (a.type === "boolean" ? "false" : "")]),
        ),
        ...(batchSize === undefined ? {} : { batch: batchSize }),
        ...(disruptive ? { waitAlive } : {}),
      });
      location.hash = `#/tasks/${run.id}`;
    } catch (err) {
      if (err instanceof ApiError && err.needsToken) setNeedToken(err.message);
      else setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  if (catalogError !== undefined) return <p class="error">Cannot read the tasks: {catalogError}</p>;
  if (catalog === undefined) return <p class="empty">Loading…</p>;
  if (task === undefined)
    return (
      <p class="empty">
        No node allows a task yet. Tasks are switched on in each node's own config (
        <code>[tasks]</code> and <code>[task.NAME]</code> sections).
      </p>
    );
  const batchOk =
    batchSize === undefined ||
    (Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= 10_000);
  return (
    <form
      class="run-form"
      aria-label="Run a task"
      onSubmit={(e) => {
        e.preventDefault();
        if (disruptive) setConfirming(true);
        else void start();
      }}
    >
      <label>
        Task
        <select
          value={task.name}
          onChange={(e) => {
            setTaskName((e.target as HTMLSelectElement).value);
            setArgs({});
          }}
        >
          {tasks.map((t) => (
            <option key={t.name} value={t.name}>
              {t.name}
              {t.disruptive ? " (disruptive)" : ""}
            </option>
          ))}
        </select>
      </label>
      {task.description !== "" && <p class="muted">{task.description}</p>}
      <label>
        On
        <input
          type="text"
          value={on}
          spellcheck={false}
          aria-describedby="selector-help"
          onInput={(e) => setOn((e.target as HTMLInputElement).value)}
        />
      </label>
      <p id="selector-help" class="muted">
        <code>all</code>, names, <code>label=value</code> or a state; commas pick any of them.
      </p>
      {task.args.map((a) => (
        // biome-ignore lint/a11y/noLabelWithoutControl: the control is one of the two branches below
        <label key={a.name}>
          {a.name}
          {a.type === "boolean" ? (
            <input
              type="checkbox"
              checked={args[a.name] === "true"}
              onChange={(e) =>
                setArgs({ ...args, [a.name]: String((e.target as HTMLInputElement).checked) })
              }
            />
          ) : (
            <input
              type="text"
              value={args[a.name] ?? ""}
              placeholder={a.pattern ?? a.type}
              inputMode={a.type === "string" ? "text" : "decimal"}
              onInput={(e) => setArgs({ ...args, [a.name]: (e.target as HTMLInputElement).value })}
            />
          )}
        </label>
      ))}
      <details class="options">
        <summary>Options</summary>
        <label>
          Nodes at a time
          <input
            type="number"
            min={1}
            placeholder={disruptive ? "1" : "all at once (up to 64)"}
            value={batch}
            onInput={(e) => setBatch((e.target as HTMLInputElement).value)}
          />
        </label>
        {disruptive && (
          <label class="check">
            <input
              type="checkbox"
              checked={waitAlive}
              onChange={(e) => setWaitAlive((e.target as HTMLInputElement).checked)}
            />
            Wait until each batch is back before the next
          </label>
        )}
      </details>
      <p class="preview" data-testid="run-preview" aria-live="polite">
        Runs on <b>{runnable.length}</b> node{runnable.length === 1 ? "" : "s"}
        {runnable.length > 0 ? `: ${someNames(runnable.map((n) => n.view.name))}` : ""}.
        {away.length > 0 && ` Skipped, not alive: ${someNames(away.map((n) => n.view.name))}.`}
        {notAllowed.length > 0 &&
          ` Not allowed there: ${someNames(notAllowed.map((n) => n.view.name))}.`}
      </p>
      {needToken !== undefined && (
        <TokenForm
          reason={needToken}
          onSaved={() => {
            setNeedToken(undefined);
            if (!disruptive) void start();
          }}
        />
      )}
      {error !== undefined && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <button
        type="submit"
        class={disruptive ? "danger" : "primary"}
        disabled={busy || runnable.length === 0 || !batchOk}
        data-testid="run-task"
      >
        Run {task.name}
      </button>
      {apiToken() !== "" && (
        <button type="button" class="link" onClick={() => setApiToken("")}>
          Forget the API token
        </button>
      )}
      {confirming && (
        <ConfirmDialog
          task={task}
          names={runnable.map((n) => n.view.name)}
          batch={batchSize ?? 1}
          waitAlive={waitAlive}
          onCancel={() => setConfirming(false)}
          onConfirm={() => {
            setConfirming(false);
            void start();
          }}
        />
      )}
    </form>
  );
}

function counts(run: TaskRun): string {
  const c = run.counts ?? {};
  return ["ok", "failed", "skipped", "cancelled", "running", "pending"]
    .filter((s) => (c[s] ?? 0) > 0)
    .map((s) => `${c[s]} ${s}`)
    .join(" · ");
}

export function RunList({ node, limit }: { node?: string; limit: number }) {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    // Read again once per burst of events: a 64-node run sends a task.node for each.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = live.onTask(() => {
      if (timer !== undefined) return;
      timer = setTimeout(() => {
        timer = undefined;
        setVersion((v) => v + 1);
      }, 500);
    });
    return () => {
      off();
      if (timer !== undefined) clearTimeout(timer);
    };
  }, []);
  const query = new URLSearchParams({ limit: String(limit) });
  if (node !== undefined) query.set("node", node);
  const { data, error } = useJson<{ runs: TaskRun[] }>(`/api/tasks?${query}`, 30_000, version);
  if (error !== undefined) return <p class="error">{error}</p>;
  const runs = data?.runs ?? [];
  if (data !== undefined && runs.length === 0) return <p class="empty">No task runs yet.</p>;
  return (
    <table class="runs">
      <thead>
        <tr>
          <th>Run</th>
          <th>Task</th>
          <th>{node === undefined ? "On" : "Result"}</th>
          <th>Status</th>
          <th>When</th>
          <th>By</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((r) => {
          const mine = node === undefined ? undefined : r.nodes[0];
          return (
            <tr key={r.id} data-run={r.id} data-status={mine?.status ?? r.status}>
              <td>
                <a href={`#/tasks/${r.id}`}>#{r.id}</a>
              </td>
              <td>{r.task}</td>
              <td>
                {mine === undefined
                  ? `${r.selector}${counts(r) === "" ? "" : ` (${counts(r)})`}`
                  : exitText(mine)}
              </td>
              <td>
                <span class={`status status-${mine?.status ?? r.status}`}>
                  {mine?.status ?? r.status}
                </span>
              </td>
              <td title={new Date(r.createdAt).toLocaleString()}>{ago(r.createdAt)} ago</td>
              <td>{r.requestedBy}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

function exitText(n: NodeResult): string {
  if (n.error !== undefined) return n.error;
  if (n.signal !== null) return `killed by ${n.signal}`;
  if (n.exitCode !== null) return `exit ${n.exitCode}`;
  return "";
}

export function TasksPage({ query }: { query: URLSearchParams }) {
  const who = useWho();
  return (
    <section class="tasks-page">
      {may(who, "operate") ? (
        <>
          <h1>Run a task</h1>
          <RunForm initialOn={query.get("on") ?? "all"} initialTask={query.get("task") ?? ""} />
        </>
      ) : (
        <h1>Tasks</h1>
      )}
      <h2>Recent runs</h2>
      <RunList limit={50} />
    </section>
  );
}

/** A node's output as the stream adds to it, until the stored result replaces it. */
function withOutput(run: TaskRun, nodeId: string, data: string): TaskRun {
  return {
    ...run,
    nodes: run.nodes.map((n) =>
      n.nodeId === nodeId
        ? { ...n, status: n.status === "pending" ? "running" : n.status, output: n.output + data }
        : n,
    ),
  };
}

export function RunPage({ id }: { id: number }) {
  const [run, setRun] = useState<TaskRun>();
  const [error, setError] = useState<string>();
  const [needToken, setNeedToken] = useState<string>();
  /** Bumped when a token is saved, to read the run again with it. */
  const [tokenVersion, setTokenVersion] = useState(0);
  const running = run?.status === "running";

  useEffect(() => {
    let alive = true;
    let again: ReturnType<typeof setTimeout> | undefined;
    const load = () =>
      getJson<TaskRun>(`/api/tasks/${id}`).then(
        (r) => {
          if (!alive) return;
          setRun(r);
          setError(undefined);
        },
        (err: unknown) => {
          if (!alive) return;
          // A run's arguments and output are for the token's holder only.
          if (err instanceof ApiError && err.needsToken) setNeedToken(err.message);
          else setError(err instanceof Error ? err.message : String(err));
        },
      );
    // A node's end or the run's end: read the stored result (it has all the output).
    const loadSoon = () => {
      again ??= setTimeout(() => {
        again = undefined;
        void load();
      }, 150);
    };
    const off = live.onTask((_kind, e) => {
      if ((e.data as { runId?: number })?.runId === id) loadSoon();
    });
    void load();
    return () => {
      alive = false;
      off();
      if (again !== undefined) clearTimeout(again);
    };
  }, [id, tokenVersion]);

  // Output as it comes, over the run's own stream (it needs the token).
  useEffect(() => {
    if (!running) return;
    const stop = new AbortController();
    followEvents(
      `/api/tasks/${id}/output`,
      (kind, e) => {
        const piece = e as { runId?: number; nodeId?: string; data?: string };
        if (kind === "task.output" && piece.runId === id)
          setRun((r) => r && withOutput(r, String(piece.nodeId), String(piece.data)));
      },
      stop.signal,
    ).catch(() => undefined); // Lost or refused: the stored run, read on each node's end, has it all.
    return () => stop.abort();
  }, [id, running]);

  // While it runs, read it now and then too: a node that starts shows as running.
  useEffect(() => {
    if (!running) return;
    let alive = true;
    const timer = setInterval(
      () =>
        getJson<TaskRun>(`/api/tasks/${id}`).then(
          (r) => {
            if (alive && r.id === id) setRun(r);
          },
          () => undefined,
        ),
      3_000,
    );
    return () => {
      alive = false;
      clearInterval(timer);
    };
  }, [id, running]);

  if (error !== undefined) return <p class="error">{error}</p>;
  if (run === undefined && needToken !== undefined)
    return (
      <TokenForm
        reason={needToken}
        onSaved={() => {
          setNeedToken(undefined);
          setTokenVersion((v) => v + 1);
        }}
      />
    );
  if (run === undefined) return <p class="empty">Loading…</p>;
  const done = run.nodes.filter((n) => !["pending", "running"].includes(n.status)).length;
  const total = run.nodes.length;
  return (
    <section class="run-page" data-run={run.id} data-status={run.status}>
      <h1>
        {run.task} <small>#{run.id}</small>{" "}
        <span class={`status status-${run.status}`} data-testid="run-status">
          {run.status}
        </span>
      </h1>
      <p class="muted">
        On <code>{run.selector}</code>
        {Object.keys(run.args).length > 0 &&
          ` with ${Object.entries(run.args)
            .map(([k, v]) => `${k}=${v}`)
            .join(" ")}`}{" "}
        · by {run.requestedBy} · {ago(run.createdAt)} ago
        {run.finishedAt !== undefined &&
          ` · took ${duration((run.finishedAt - run.createdAt) / 1000)}`}
      </p>
      <div class="progress">
        <progress max={Math.max(total, 1)} value={done} aria-label="nodes done" />
        <span>
          {done} of {total} nodes done
        </span>
        {running && (
          <button
            type="button"
            class="danger"
            onClick={() =>
              sendJson("DELETE", `/api/tasks/${run.id}`).catch((err: unknown) => {
                if (err instanceof ApiError && err.needsToken) setNeedToken(err.message);
                else setError(err instanceof Error ? err.message : String(err));
              })
            }
          >
            Cancel
          </button>
        )}
      </div>
      {needToken !== undefined && (
        <TokenForm reason={needToken} onSaved={() => setNeedToken(undefined)} />
      )}
      <ul class="node-results">
        {run.nodes.map((n) => (
          <li key={n.nodeId} data-node={n.name} data-status={n.status}>
            <div class="result-head">
              <a class="result-node" href={`#/node/${encodeURIComponent(n.nodeId)}`}>
                {n.name}
              </a>
              <span class={`status status-${n.status}`}>{n.status}</span>
              <span class="muted">
                {exitText(n)}
                {n.startedAt !== undefined &&
                  n.finishedAt !== undefined &&
                  ` · ${duration((n.finishedAt - n.startedAt) / 1000)}`}
              </span>
            </div>
            {n.output !== "" && (
              <pre class="output" role="log" aria-label={`output of ${n.name}`}>
                {n.output}
                {n.truncated && "\n… (output cut: only the first 64 KiB is kept)"}
              </pre>
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}
