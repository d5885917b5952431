/**
 * The Alerts page: what fires now, the channels (each with a test message,
 * which needs the API token) and the rules in effect, read-only, as the
 * primary reads them from its config (GET /api/alerts).
 */

import { ago, span } from "@picluster/common/shared";
import { useState } from "preact/hooks";
import { type AlertsAnswer, ApiError, testChannel } from "./api.js";
import { useJson } from "./hooks.js";
import { TokenForm } from "./tasks.js";

function ChannelItem({ name, type }: { name: string; type: string }) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string }>();
  const [needToken, setNeedToken] = useState<string>();
  const send = async () => {
    setBusy(true);
    setResult(undefined);
    try {
      const r = await testChannel(name);
      const tries = r.attempts > 1 ? ` after ${r.attempts} attempts` : "";
      setResult(
        r.ok
          ? { ok: true, text: `Delivered in ${r.ms} ms${tries}` }
          : { ok: false, text: `Not delivered${tries}: ${r.error ?? "no reason given"}` },
      );
    } catch (err) {
      if (err instanceof ApiError && err.needsToken) setNeedToken(err.message);
      else
        setResult({
          ok: false,
          text: `Not sent: ${err instanceof Error ? err.message : String(err)}`,
        });
    } finally {
      setBusy(false);
    }
  };
  return (
    <li data-channel={name}>
      <div class="channel-head">
        <b>{name}</b> <span class="type">{type}</span>
        <button type="button" disabled={busy} onClick={() => void send()}>
          {busy ? "Sending…" : "Send a test message"}
        </button>
        {result !== undefined && (
          <span
            class={result.ok ? "status status-ok" : "status status-failed"}
            data-testid="test-result"
            role="status"
          >
            {result.text}
          </span>
        )}
      </div>
      {needToken !== undefined && (
        <TokenForm
          reason={needToken}
          purpose="send test messages"
          onSaved={() => {
            setNeedToken(undefined);
            void send();
          }}
        />
      )}
    </li>
  );
}

export function AlertsPage() {
  const { data, error } = useJson<AlertsAnswer>("/api/alerts", 10_000);
  if (error !== undefined) return <p class="error">Cannot read the alerts: {error}</p>;
  if (data === undefined) return <p class="empty">Loading…</p>;
  const firing = data.states.filter((s) => s.state === "firing");
  const pending = data.states.filter((s) => s.state === "pending");
  return (
    <section class="alerts-page">
      <h1>Alerts</h1>
      {!data.enabled && (
        <p class="muted">
          Alerting is switched off on this primary (<code>[alerts] enabled</code>).
        </p>
      )}
      <h2>Firing now</h2>
      {firing.length === 0 ? (
        <p class="empty" data-testid="firing">
          Nothing fires.
        </p>
      ) : (
        <ul class="firing" data-testid="firing">
          {firing.map((s) => (
            <li key={`${s.rule}-${s.nodeId}`} class={`alert-${s.severity}`}>
              <a href={`#/node/${encodeURIComponent(s.nodeId)}`}>{s.title}</a>{" "}
              <small class="muted">
                {s.rule} · {ago(s.firedAt ?? s.since)} ago
              </small>
            </li>
          ))}
        </ul>
      )}
      {pending.length > 0 && (
        <p class="muted">
          Pending (holding, not yet long enough):{" "}
          {pending.map((s) => `${s.rule} on ${s.name}`).join(", ")}.
        </p>
      )}
      <h2>Channels</h2>
      {data.channels.length === 0 ? (
        <p class="empty">
          No channel is configured: add a <code>[channel.NAME]</code> section to the primary's
          config (see docs/alerts.md).
        </p>
      ) : (
        <ul class="channels">
          {data.channels.map((c) => (
            <ChannelItem key={c.name} name={c.name} type={c.type} />
          ))}
        </ul>
      )}
      <h2>Rules</h2>
      <div class="table-wrap">
        <table class="rules">
          <thead>
            <tr>
              <th scope="col">Rule</th>
              <th scope="col">When</th>
              <th scope="col">For</th>
              <th scope="col">Severity</th>
              <th scope="col">Tells</th>
              <th scope="col">On</th>
              <th scope="col">Now</th>
            </tr>
          </thead>
          <tbody>
            {data.rules.map((r) => (
              <tr key={r.name} data-rule={r.name} class={r.enabled ? "" : "off"}>
                <td>
                  <b>{r.name}</b> <small class="muted">{r.stock ? "stock" : "yours"}</small>
                </td>
                <td title={r.summary}>
                  <code>{r.when}</code>
                </td>
                <td>{span(r.forMs)}</td>
                <td>
                  <span class={`alert-${r.severity}`}>{r.severity}</span>
                </td>
                <td>{r.channels.length === 0 ? "the default channels" : r.channels.join(", ")}</td>
                <td>
                  <code>{r.on}</code>
                </td>
                <td>{!r.enabled ? "off" : r.firing > 0 ? `${r.firing} firing` : "quiet"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
