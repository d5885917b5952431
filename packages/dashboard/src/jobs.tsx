/**
 * Jobs on the page: submit one from an allowed task with a range or pasted
 * items, the recent jobs, and one job's live progress, per-node throughput,
 * failed items with their output, and Cancel.
 */
import type { JsonValue, StoredJob, StoredJobItem } from "@picluster/common/shared";
import { ago, duration } from "@picluster/common/shared";
import { useEffect, useState } from "preact/hooks";
import { ApiError, type CatalogTask, sendJson } from "./api.js";
import { useJson, useLive } from "./hooks.js";
import { TokenForm } from "./tasks.js";
import { may, useWho } from "./who.js";

const ENDED = new Set(["ok", "failed", "cancelled"]);

function finished(job: StoredJob): number {
  return job.counts.ok + job.counts.failed + job.counts.cancelled;
}

function Progress({ job }: { job: StoredJob }) {
  const { total, ok, failed, running, queued } = job.counts;
  return (
    <div class="progress">
      <progress max={Math.max(1, total)} value={finished(job)} aria-label="Items finished" />
      <span data-testid="job-counts">
        {ok} done, {failed} failed, {running} running, {queued} queued of {total}
      </span>
    </div>
  );
}

/** Items from the textarea: one JSON value per line; a line that is not JSON is taken as text. */
export function pastedItems(text: string): JsonValue[] {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .map((l) => {
      try {
        return JSON.parse(l) as JsonValue;
      } catch {
        return l;
      }
    });
}

function SubmitForm() {
  const { data: catalog, error } = useJson<{ tasks: CatalogTask[] }>("/api/tasks/catalog");
  const [taskName, setTaskName] = useState("");
  const [on, setOn] = useState("all");
  const [mode, setMode] = useState<"range" | "list">("range");
  const [from, setFrom] = useState("1");
  const [to, setTo] = useState("100");
  const [pasted, setPasted] = useState("");
  const [args, setArgs] = useState<Record<string, string>>({});
  const [perNode, setPerNode] = useState("");
  const [problem, setProblem] = useState<string | undefined>();
  const [needToken, setNeedToken] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const tasks = catalog?.tasks ?? [];
  const task = tasks.find((x) => x.name === taskName) ?? tasks[0];
  useEffect(() => {
    // A new task: its first argument takes the item, the others start empty.
    if (task === undefined) return;
    setArgs(Object.fromEntries(task.args.map((a, i) => [a.name, i === 0 ? "{item}" : ""])));
  }, [task?.name]);
  if (error !== undefined) return <p class="error">Cannot read the tasks: {error}</p>;
  if (catalog === undefined) return <p class="empty">Loading…</p>;
  if (task === undefined)
    return <p class="empty">No node allows a task yet: add a [task.NAME] to a node's config.</p>;
  if (needToken !== undefined)
    return (
      <TokenForm reason={needToken} purpose="submit jobs" onSaved={() => setNeedToken(undefined)} />
    );
  const submit = async () => {
    setBusy(true);
    setProblem(undefined);
    try {
      const items =
        mode === "range"
          ? { kind: "range", from: Number(from), to: Number(to) }
          : { kind: "list", values: pastedItems(pasted) };
      const job = await sendJson<StoredJob>("POST", "/api/jobs", {
        task: task.name,
        on,
        items,
        args: Object.fromEntries(Object.entries(args).filter(([, v]) => v !== "")),
        ...(perNode === "" ? {} : { perNode: Number(perNode) }),
      });
      location.hash = `#/jobs/${job.id}`;
    } catch (err) {
      if (err instanceof ApiError && err.needsToken) setNeedToken(err.message);
      else setProblem(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form
      class="run-form job-form"
      aria-label="Submit a job"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      <label>
        Task{" "}
        <select
          value={task.name}
          onChange={(e) => setTaskName((e.target as HTMLSelectElement).value)}
        >
          {tasks.map((x) => (
            <option value={x.name} key={x.name}>
              {x.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        On{" "}
        <input
          type="text"
          aria-label="Nodes"
          value={on}
          onInput={(e) => setOn((e.target as HTMLInputElement).value)}
        />
      </label>
      <fieldset>
        <legend>Items</legend>
        <label>
          <input
            type="radio"
            name="items"
            checked={mode === "range"}
            onChange={() => setMode("range")}
          />{" "}
          numbers from{" "}
          <input
            type="number"
            aria-label="From"
            value={from}
            onInput={(e) => setFrom((e.target as HTMLInputElement).value)}
          />{" "}
          to{" "}
          <input
            type="number"
            aria-label="To"
            value={to}
            onInput={(e) => setTo((e.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          <input
            type="radio"
            name="items"
            checked={mode === "list"}
            onChange={() => setMode("list")}
          />{" "}
          pasted, one per line (JSON values or text)
        </label>
        {mode === "list" && (
          <textarea
            aria-label="Items"
            rows={6}
            value={pasted}
            onInput={(e) => setPasted((e.target as HTMLTextAreaElement).value)}
          />
        )}
      </fieldset>
      {task.args.map((a) => (
        <label key={a.name}>
          {a.name} ({a.type}){" "}
          <input
            type="text"
            aria-label={`Argument ${a.name}`}
            value={args[a.name] ?? ""}
            onInput={(e) => setArgs({ ...args, [a.name]: (e.target as HTMLInputElement).value })}
          />
        </label>
      ))}
      <label>
        At most per node{" "}
        <input
          type="number"
          aria-label="Per node"
          min={1}
          value={perNode}
          placeholder="its max_running"
          onInput={(e) => setPerNode((e.target as HTMLInputElement).value)}
        />
      </label>
      <p class="hint">
        <code>{"{item}"}</code> in an argument is replaced by each item; <code>{"{item.KEY}"}</code>{" "}
        by a key of an object item.
      </p>
      {problem !== undefined && (
        <p class="error" role="alert" data-testid="job-problem">
          {problem}
        </p>
      )}
      <button type="submit" disabled={busy} data-testid="submit-job">
        Submit job
      </button>
    </form>
  );
}

export function JobsPage() {
  const { data, error } = useJson<{ jobs: StoredJob[] }>("/api/jobs?limit=30", 2_000);
  const who = useWho();
  return (
    <section class="jobs">
      <h1>Jobs</h1>
      {may(who, "operate") && <SubmitForm />}
      <h2>Recent jobs</h2>
      {error !== undefined && <p class="error">Cannot read the jobs: {error}</p>}
      {data !== undefined && data.jobs.length === 0 && <p class="empty">No job yet.</p>}
      <ul class="job-list">
        {data?.jobs.map((j) => (
          <li key={j.id} data-job={j.id}>
            <a href={`#/jobs/${j.id}`}>
              #{j.id} {j.task} on {j.selector}
            </a>{" "}
            <span class={`status status-${j.status}`}>{j.status}</span> <Progress job={j} />{" "}
            <span class="when">{ago(j.createdAt)} ago</span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function JobPage({ id }: { id: number }) {
  const cluster = useLive();
  const [version, setVersion] = useState(0);
  const { data: job, error } = useJson<StoredJob>(`/api/jobs/${id}`, 1_000, version);
  const running = job !== undefined && !ENDED.has(job.status);
  const { data: results } = useJson<{ items: StoredJobItem[] }>(
    `/api/jobs/${id}/results?limit=10000`,
    running ? 2_000 : undefined,
    version + (running ? 0 : 1),
  );
  const { data: failed } = useJson<{ items: StoredJobItem[]; redacted: boolean }>(
    `/api/jobs/${id}/results?state=failed&limit=100`,
    running ? 2_000 : undefined,
    version + (running ? 0 : 1),
  );
  const [needToken, setNeedToken] = useState<string | undefined>();
  const [problem, setProblem] = useState<string | undefined>();
  if (error !== undefined)
    return (
      <p class="error">
        Cannot read job {id}: {error}
      </p>
    );
  if (job === undefined) return <p class="empty">Loading…</p>;
  const name = (nodeId: string) => cluster.nodes.get(nodeId)?.view.name ?? nodeId;
  // Items finished per node: the throughput bars. The primary counts them while it runs
  // the job (and keeps them a while after); else they are counted from the results.
  const perNode = new Map<string, number>();
  if (job.nodes !== undefined)
    for (const n of job.nodes)
      if (n.ok + n.failed > 0) perNode.set(n.nodeId, n.ok + n.failed);
      else
        for (const item of results?.items ?? [])
          if (item.nodeId !== null && (item.state === "ok" || item.state === "failed"))
            perNode.set(item.nodeId, (perNode.get(item.nodeId) ?? 0) + 1);
  const most = Math.max(1, ...perNode.values());
  const took = (job.finishedAt ?? Date.now()) - job.createdAt;
  const cancel = async () => {
    try {
      await sendJson("DELETE", `/api/jobs/${id}`);
      setVersion((v) => v + 2);
    } catch (err) {
      if (err instanceof ApiError && err.needsToken) setNeedToken(err.message);
      else setProblem(err instanceof Error ? err.message : String(err));
    }
  };
  return (
    <section class="job">
      <h1>
        Job #{job.id}: {job.task} on {job.selector}{" "}
        <span class={`status status-${job.status}`} data-testid="job-status">
          {job.status}
        </span>
      </h1>
      <Progress job={job} />
      <p class="when">
        Submitted by {job.requestedBy} {ago(job.createdAt)} ago; {running ? "running for" : "took"}{" "}
        {duration(took / 1000)}
        {job.finishedAt !== undefined && took > 0
          ? `, ${(finished(job) / (took / 1000)).toFixed(1)} items/s`
          : ""}
        .
      </p>
      {running && (
        <button type="button" onClick={() => void cancel()} data-testid="cancel-job">
          Cancel
        </button>
      )}
      {needToken !== undefined && (
        <TokenForm
          reason={needToken}
          purpose="cancel jobs"
          onSaved={() => setNeedToken(undefined)}
        />
      )}
      {problem !== undefined && <p class="error">{problem}</p>}
      {(job.skipped ?? []).map((s) => (
        <p class="hint" key={s.nodeId}>
          {s.name} takes no items: {s.reason}
        </p>
      ))}
      <h2>Items per node</h2>
      <ul class="per-node" data-testid="per-node">
        {[...perNode.entries()]
          .sort((a, b) => b[1] - a[1])
          .map(([nodeId, n]) => (
            <li key={nodeId} data-node={name(nodeId)}>
              <span class="name">{name(nodeId)}</span>
              <span class="tput" style={{ width: `${(n / most) * 100}%` }} />
              <span class="n">{n}</span>
            </li>
          ))}
      </ul>
      <h2>Failed items</h2>
      {failed?.redacted === true && <p class="hint">Their output needs the API token.</p>}
      {(failed?.items.length ?? 0) === 0 ? (
        <p class="empty">None.</p>
      ) : (
        <ul class="failed-items" data-testid="failed-items">
          {failed?.items.map((item) => (
            <li key={item.index} data-item={item.index}>
              <b>{JSON.stringify(item.value)}</b> on{" "}
              {item.nodeId === null ? "–" : name(item.nodeId)}: exit{" "}
              {item.exitCode ?? item.signal ?? "–"}
              {item.error !== undefined && <span class="error"> {item.error}</span>}
              {item.output !== "" && <pre>{item.output}</pre>}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
