/**
 * "Add node": a one-time join token for a name (it needs the API token, as
 * running a task does), shown as the lines `picluster node add` prints, each
 * with a copy button; the dialog then says when the node has joined.
 */
import { useRef, useState } from "preact/hooks";
import { ApiError, createJoinToken, type JoinToken } from "./api.js";
import { useLive } from "./hooks.js";
import { live } from "./live.js";
import { Modal } from "./modal.js";
import { TokenForm } from "./tasks.js";

/** A line to paste, and a button that copies it (or selects it where the clipboard is off). */
function CopyLine({ text, testid }: { text: string; testid: string }) {
  const ref = useRef<HTMLElement>(null);
  const [done, setDone] = useState<string>();
  const copy = async () => {
    try {
      // Only on a secure page (https, or this machine): elsewhere it is undefined and throws.
      await navigator.clipboard.writeText(text);
      setDone("Copied");
    } catch {
      const el = ref.current;
      if (el !== null) getSelection()?.selectAllChildren(el);
      setDone("Selected: press Ctrl+C");
    }
  };
  return (
    <div class="copy-line">
      <code ref={ref} data-testid={testid}>
        {text}
      </code>
      <button type="button" onClick={() => void copy()} data-testid={`copy-${testid}`}>
        {done ?? "Copy"}
      </button>
    </div>
  );
}

function validFor(ms: number): string {
  const hours = ms / 3_600_000;
  return hours >= 1 ? `${+hours.toFixed(1)} hours` : `${Math.round(ms / 60_000)} minutes`;
}

/** The lines for the new node, and whether it has joined yet. */
function JoinLines({
  join,
  madeAt,
  known,
}: {
  join: JoinToken;
  madeAt: number;
  known: Set<string>;
}) {
  const cluster = useLive();
  // The node with that name that was not there before, or came back since.
  const joined = [...cluster.nodes.values()].find(
    (n) =>
      n.view.name === join.name &&
      n.view.state === "alive" &&
      (!known.has(n.view.id) || n.view.stateSince >= madeAt),
  );
  return (
    <>
      <p>
        On the new node, paste one of these. The token in them works once, within the next{" "}
        {validFor(join.validForMs)}; the node needs Node.js 20.
      </p>
      {join.command !== null && (
        <>
          <h3>Install the agent and its service</h3>
          <p class="muted">
            It fetches the agent from this primary, checks it and installs the service; the node
            must reach this primary's HTTP port.
          </p>
          <CopyLine text={join.command} testid="join-command" />
        </>
      )}
      {join.manual !== null && (
        <>
          <h3>Where picluster is already installed</h3>
          <CopyLine text={join.manual} testid="join-manual" />
        </>
      )}
      <p class={joined ? "joined" : "muted"} data-testid="join-status" aria-live="polite">
        {joined === undefined ? (
          `Waiting for ${join.name} to join…`
        ) : (
          <>
            {join.name} joined:{" "}
            <a href={`#/node/${encodeURIComponent(joined.view.id)}`}>its page</a>
          </>
        )}
      </p>
    </>
  );
}

function AddNodeDialog({ onClose }: { onClose: () => void }) {
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [needToken, setNeedToken] = useState<string>();
  const [made, setMade] = useState<{ join: JoinToken; at: number; known: Set<string> }>();
  const create = async () => {
    setBusy(true);
    setError(undefined);
    const wanted = name.trim();
    const known = new Set(
      [...live.nodes.values()].filter((n) => n.view.name === wanted).map((n) => n.view.id),
    );
    try {
      const join = await createJoinToken(wanted);
      setMade({ join, at: Date.now(), known });
    } catch (err) {
      if (err instanceof ApiError && err.needsToken) setNeedToken(err.message);
      else setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal labelledBy="add-node-title" extraClass="add-node" onCancel={onClose}>
      <h2 id="add-node-title">Add a node</h2>
      {made === undefined ? (
        <>
          <form
            class="add-node-form"
            onSubmit={(e) => {
              e.preventDefault();
              void create();
            }}
          >
            <label>
              Name
              <input
                type="text"
                aria-label="Node name"
                placeholder="pi-01"
                spellcheck={false}
                autoComplete="off"
                maxLength={63}
                value={name}
                onInput={(e) => setName((e.target as HTMLInputElement).value)}
              />
            </label>
            <p class="muted">
              Letters, digits, <code>.</code>, <code>_</code> or <code>-</code>. A one-time join
              token is made for this name.
            </p>
            {error !== undefined && (
              <p class="error" role="alert">
                {error}
              </p>
            )}
            <div class="actions">
              <button type="button" onClick={onClose}>
                Cancel
              </button>
              <button
                type="submit"
                class="primary"
                disabled={busy || name.trim() === ""}
                data-testid="create-join-token"
              >
                Make a join token
              </button>
            </div>
          </form>
          {needToken !== undefined && (
            <TokenForm
              reason={needToken}
              purpose="add nodes"
              onSaved={() => {
                setNeedToken(undefined);
                void create();
              }}
            />
          )}
        </>
      ) : (
        <>
          <JoinLines join={made.join} madeAt={made.at} known={made.known} />
          <div class="actions">
            <button type="button" onClick={onClose}>
              Close
            </button>
          </div>
        </>
      )}
    </Modal>
  );
}

export function AddNode() {
  const [open, setOpen] = useState(false);
  return (
    <>
      <button
        type="button"
        class="primary add"
        onClick={() => setOpen(true)}
        data-testid="add-node"
      >
        Add node
      </button>
      {open && <AddNodeDialog onClose={() => setOpen(false)} />}
    </>
  );
}
