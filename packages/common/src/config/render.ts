/** Views of the configuration for people: `config show` and docs/configuration.md. */

import { ALERT_KEYS, ALERT_METRICS, STOCK_ALERTS } from "./alerts.js";
import { CHANNEL_KEYS, channelValues } from "./channels.js";
import { CHECK_KEYS } from "./checks.js";
import { CUSTOM_METRIC_KEYS } from "./custom-metrics.js";
import { describeSource, type LoadedConfig } from "./load.js";
import { ALIASES, type AnyKeyDef, envName, flagName, SCHEMA, schemaKeys } from "./schema.js";
import { TASK_ARG_KEY_DOC, TASK_KEYS } from "./tasks.js";
import { formatDuration } from "./types.js";

export interface EffectiveValue {
  section: string;
  key: string;
  /** The value as it would be written in a file; secrets are redacted. */
  value: string;
  source: string;
}

export const REDACTED = "(redacted)";

/** Every key's effective value and where it came from, secrets redacted. */
export function effectiveValues(loaded: LoadedConfig): EffectiveValue[] {
  return [...schemaValues(loaded), ...channelEffectiveValues(loaded)];
}

function schemaValues(loaded: LoadedConfig): EffectiveValue[] {
  return schemaKeys().map(({ section, key, def }) => {
    const value = (loaded.config as unknown as Record<string, Record<string, unknown>>)[section]?.[
      key
    ];
    const text = def.type.format(value);
    return {
      section,
      key,
      value: def.secret && text !== "" ? REDACTED : text,
      source: describeSource(loaded.sources[`${section}.${key}`] ?? { kind: "default" }),
    };
  });
}

/** `[channel.NAME]` keys, defaults included; URLs, tokens, passwords and secrets redacted. */
function channelEffectiveValues(loaded: LoadedConfig): EffectiveValue[] {
  return Object.values(loaded.config.channel).flatMap((def) =>
    channelValues(def).map(({ key, value, secret }) => ({
      section: `channel.${def.name}`,
      key,
      value: secret && value !== "" ? REDACTED : value,
      source: describeSource(loaded.sources[`channel.${def.name}.${key}`] ?? { kind: "default" }),
    })),
  );
}

function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

/** docs/configuration.md, generated from the schema table (`npm run docs:config`). */
export function renderConfigDocs(): string {
  const out: string[] = [
    "# Configuration reference",
    "",
    "<!-- Generated from packages/common/src/config/schema.ts by `npm run docs:config`; do not edit by hand. -->",
    "",
    "picluster reads one INI file per machine, with the rules of Python's ConfigParser:",
    "`[section]` headers, `key = value` or `key: value`, `#` and `;` comment lines,",
    "`[DEFAULT]` values visible in every section, `%(name)s` interpolation (`%%` for a",
    "literal `%`), and indented continuation lines. Keys are case-insensitive; a",
    "duplicate section or key is an error.",
    "",
    "The file is the first of: `--config FILE`, `$PICLUSTER_CONFIG`, `./picluster.ini`,",
    "`/etc/picluster/picluster.ini`. With none, the defaults below apply.",
    "",
    "Precedence: defaults < file < environment variables < command-line flags.",
    "Every key has an environment variable `PICLUSTER_<SECTION>_<KEY>` and a flag",
    "`--<section>-<key>` (underscores become dashes). `picluster config check` validates a",
    "file; `picluster config show` prints every effective value and where it came from.",
    "",
    "Durations take a unit: `500ms`, `10s`, `5m`, `1h`, `7d`. Sizes take `B`, `KB`, `MB`,",
    "`GB` (binary: 1KB = 1024 bytes). Booleans: `on`/`off`, `true`/`false`, `yes`/`no`, `1`/`0`.",
    "",
  ];
  for (const [section, keys] of Object.entries(SCHEMA)) {
    out.push(
      `## [${section}]`,
      "",
      "| key | type | default | environment / flag | meaning |",
      "|---|---|---|---|---|",
    );
    for (const [key, def] of Object.entries(keys) as Array<[string, AnyKeyDef]>) {
      const shown = def.type.format(def.default);
      out.push(
        `| \`${key}\` | ${cell(def.type.name)} | ${shown === "" ? "(empty)" : `\`${cell(shown)}\``} | \`${envName(section, key)}\` \`${flagName(section, key)}\` | ${cell(def.doc)}${def.secret ? " Secret: redacted in output." : ""} |`,
      );
    }
    out.push("");
  }
  out.push(
    "## [task.NAME]",
    "",
    "A task this node allows the primary to run; the node runs nothing else. Read from the file only",
    "(no environment variables or flags). The primary reads each node's tasks from its details: a run",
    'skips the nodes that do not allow its task ("not allowed", which fails no run), and a task that',
    "no selected node allows is refused before anything is sent. Example:",
    "",
    "```ini",
    "[task.restart-service]",
    "command = systemctl restart {service}",
    "description = Restart one systemd service",
    "timeout = 2m",
    "arg.service = string [a-z0-9@._-]{1,64}",
    "```",
    "",
    "| key | meaning |",
    "|---|---|",
    ...[...TASK_KEYS, TASK_ARG_KEY_DOC].map(
      (k) => `| \`${k.key}\` | ${k.doc.replaceAll("|", "\\|")} |`,
    ),
    "",
  );
  out.push(
    "## [metrics.NAME]",
    "",
    "Numbers of your own, collected by this node's agent and sent with its vitals: stored with",
    "rollups, charted on the node page, usable in alert rules (`when = custom.queue_depth > 100`)",
    "and exported on `/metrics`. Read from the file only. See [custom-metrics.md](custom-metrics.md).",
    "Example:",
    "",
    "```ini",
    "[metrics.queue]",
    "command = /usr/local/bin/queue-depth",
    "interval = 30s",
    "",
    "[metrics.textfile]",
    "file = /var/lib/node_exporter/textfile/backup.prom",
    "interval = 1m",
    "```",
    "",
    "| key | meaning |",
    "|---|---|",
    ...CUSTOM_METRIC_KEYS.map((k) => `| \`${k.key}\` | ${k.doc.replaceAll("|", "\\|")} |`),
    "",
  );
  out.push(
    "## [check.NAME]",
    "",
    "A check this node runs: a systemd unit, an HTTP(S) endpoint, a TCP port or a host to ping,",
    "each at its own interval. Its state travels with the vitals; the primary tells each change as an",
    "event (`check.down`, `check.up`), alerts with the stock rule `check_down` and lists every check",
    "at `GET /api/checks`. Read from the file only. See [checks.md](checks.md). Example:",
    "",
    "```ini",
    "[check.web]",
    "http = https://127.0.0.1/healthz",
    "body = ok",
    "",
    "[check.nginx]",
    "unit = nginx.service",
    "interval = 10s",
    "```",
    "",
    "| key | meaning |",
    "|---|---|",
    ...CHECK_KEYS.map((k) => `| \`${k.key}\` | ${k.doc.replaceAll("|", "\\|")} |`),
    "",
  );
  out.push(
    "## [alert.NAME]",
    "",
    "An alert rule of the primary. The stock rules below are on by default; a section named like one",
    "changes only the keys it sets, any other name is a rule of your own. Read from the file only.",
    "How notifications reach you: [alerts.md](alerts.md). Example:",
    "",
    "```ini",
    "[alert.cpu_temp]",
    "when = temp > 75",
    "",
    "[alert.web_disk]",
    "when = disk > 80",
    "for = 10m",
    "on = role=web",
    "channels = ntfy",
    "severity = critical",
    "```",
    "",
    "| key | meaning |",
    "|---|---|",
    ...ALERT_KEYS.map((k) => `| \`${k.key}\` | ${cell(k.doc)} |`),
    "",
    "Metrics a rule can watch:",
    "",
    "| metric | meaning |",
    "|---|---|",
    ...ALERT_METRICS.map((m) => `| \`${m.name}\` | ${cell(m.doc)} |`),
    "",
    "Stock rules:",
    "",
    "| rule | when | for | severity |",
    "|---|---|---|---|",
    ...STOCK_ALERTS.map(
      (r) =>
        `| \`${r.name}\` | \`${r.metric} ${r.op} ${r.threshold}\` | ${r.forMs === 0 ? "at once" : formatDuration(r.forMs)} | ${r.severity} |`,
    ),
    "",
  );
  out.push(
    "## [channel.NAME]",
    "",
    "Where the primary sends alerts: a webhook, an ntfy topic, a Discord or Slack webhook, an SMTP",
    "server or a command. `NAME` is lowercase letters, digits, `.`, `_` or `-`, starting with a letter;",
    "rules and `[alerts] channels` name it the same way (`ops.pager` for `[channel.ops.pager]`).",
    "Read from the file only (no environment variables or flags). Each message is",
    "retried with backoff on failure; one channel that is down or slow never delays the others.",
    "URLs, tokens, passwords and secrets are redacted by `config show` and never logged. Setting",
    "each type up: [alerts.md](alerts.md#channels). Example:",
    "",
    "```ini",
    "[channel.phone]",
    "type = ntfy",
    "url = https://ntfy.sh/picluster-7f3a9c",
    "",
    "[channel.ops-mail]",
    "type = email",
    "host = smtp.gmail.com",
    "user = me@gmail.com",
    "password = abcdefghijklmnop",
    "from = picluster <me@gmail.com>",
    "to = me@gmail.com, oncall@example.org",
    "```",
    "",
    "| key | channel types | meaning |",
    "|---|---|---|",
    ...CHANNEL_KEYS.map(
      (k) =>
        `| \`${k.key}\` | ${k.types === "all" ? "all" : k.types.join(", ")} | ${cell(k.doc)}${k.secret ? " Secret: redacted in output." : ""} |`,
    ),
    "",
  );
  out.push(
    "## Names from the tutorial's rpicluster.cfg",
    "",
    "These are still read, each with a deprecation line, so an existing `rpicluster.cfg` works unchanged.",
    "",
    "| old name | read as |",
    "|---|---|",
    ...ALIASES.map(
      (a) =>
        `| \`[${a.section}] ${a.key}\` | ${"to" in a ? `\`[${a.to.replace(".", "] ")}\`` : `ignored: ${cell(a.obsolete)}`} |`,
    ),
    "",
  );
  return out.join("\n");
}
