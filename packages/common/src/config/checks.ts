/**
 * `[check.NAME]` sections of a node's config: whether a service of this
 * node, or an endpoint it can reach, is up. The agent runs each at its own
 * interval and sends the states with its vitals; the primary tells a change
 * as an event and alerts with the stock rule `check_down` (see
 * docs/checks.md).
 *
 * ```ini
 * [check.web]
 * http = https://127.0.0.1/healthz
 * body = ok
 *
 * [check.nginx]
 * unit = nginx.service
 * ```
 */
import type { IniDocument } from "./ini.js";
import { boundTimeout, readNamedSections, type SectionKey, typed } from "./sections.js";
import { durationType, formatDuration, integerType } from "./types.js";

export type CheckKind = "unit" | "http" | "tcp" | "ping";
export const CHECK_KINDS: readonly CheckKind[] = ["unit", "http", "tcp", "ping"];

export interface CheckDef {
  name: string;
  kind: CheckKind;
  /** The unit's name, the URL, `host:port` or the host, as written. */
  target: string;
  intervalMs: number;
  timeoutMs: number;
  /** http: the statuses that count as up (default 200–399). */
  status: readonly [number, number];
  /** http: a text the body must contain ("" for none). */
  body: string;
  /** http (https): down when the certificate expires within this many days (0: not checked). */
  certDays: number;
  where: string;
}

export const CHECK_NAME = /^[a-z][a-z0-9_-]{0,63}$/;
export const DEFAULT_CHECK_INTERVAL_MS = 30_000;
export const DEFAULT_CHECK_TIMEOUT_MS = 5_000;
export const DEFAULT_CERT_DAYS = 14;
const intervalType = durationType(1_000, 86_400_000);
const timeoutType = durationType(100, 120_000);
const HOST = /^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$|^\[?[0-9A-Fa-f:.]+\]?$/;

interface Draft {
  def: CheckDef;
  kinds: CheckKind[];
}

function kindKey(
  kind: CheckKind,
  doc: string,
  check: (raw: string) => string[],
): SectionKey<Draft> {
  return {
    key: kind,
    doc,
    read: (raw) => ({ value: raw, problems: check(raw) }),
    apply: (draft, v) => {
      draft.def.kind = kind;
      draft.def.target = v as string;
      draft.kinds.push(kind);
    },
  };
}

export const CHECK_KEYS: ReadonlyArray<SectionKey<Draft>> = [
  kindKey(
    "unit",
    "A systemd unit of this node (`nginx`, `backup.timer`): up while it is active, read with `systemctl show` (no shell).",
    (raw) => (/^[A-Za-z0-9:_.@\\-]{1,256}$/.test(raw) ? [] : [`not a unit name: "${raw}"`]),
  ),
  kindKey(
    "http",
    "A URL to GET (`http://` or `https://`): up when the status is in `status` and the body holds `body`; its latency is kept, and for https the certificate's expiry (see `cert_days`). Redirects are not followed (a 3xx counts as up by default).",
    (raw) => {
      try {
        const u = new URL(raw);
        return u.protocol === "http:" || u.protocol === "https:"
          ? []
          : [`expected an http:// or https:// URL, got "${raw}"`];
      } catch {
        return [`not a URL: "${raw}"`];
      }
    },
  ),
  kindKey(
    "tcp",
    "`HOST:PORT` (`[v6]:PORT`): up when a TCP connection opens within the timeout.",
    (raw) => {
      const m = /^(.+):(\d{1,5})$/.exec(raw);
      return m !== null && HOST.test(m[1] as string) && Number(m[2]) >= 1 && Number(m[2]) <= 65535
        ? []
        : [`expected HOST:PORT, got "${raw}"`];
    },
  ),
  kindKey(
    "ping",
    "A host to ping once per interval with the system's `ping` (ICMP echo): up when it answers within the timeout.",
    (raw) => (HOST.test(raw) ? [] : [`not a host name or address: "${raw}"`]),
  ),
  {
    key: "interval",
    doc: `How often to check (default ${formatDuration(DEFAULT_CHECK_INTERVAL_MS)}).`,
    read: typed(intervalType),
    apply: (draft, v) => {
      draft.def.intervalMs = v as number;
    },
  },
  {
    key: "timeout",
    doc: `How long one check may take before it counts as down (default ${formatDuration(DEFAULT_CHECK_TIMEOUT_MS)} or the interval, whichever is shorter).`,
    read: typed(timeoutType),
    apply: (draft, v) => {
      draft.def.timeoutMs = v as number;
    },
  },
  {
    key: "status",
    doc: "http: the statuses that count as up, one (`200`) or a range (`200-299`); default `200-399`.",
    read: (raw) => {
      const m = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(raw);
      const lo = Number(m?.[1]);
      const hi = Number(m?.[2] ?? m?.[1]);
      return m === null || lo < 100 || hi > 599 || lo > hi
        ? { problems: [`expected a status or a range such as 200-299, got "${raw}"`] }
        : { value: [lo, hi] };
    },
    apply: (draft, v) => {
      draft.def.status = v as [number, number];
    },
  },
  {
    key: "body",
    doc: "http: a text the response body must contain (the first 64 KiB are read).",
    read: (raw) => ({ value: raw }),
    apply: (draft, v) => {
      draft.def.body = v as string;
    },
  },
  {
    key: "cert_days",
    doc: `https: down when the server's certificate expires within this many days (default ${DEFAULT_CERT_DAYS}; 0 turns the check of its expiry off).`,
    read: typed(integerType(0, 3_650)),
    apply: (draft, v) => {
      draft.def.certDays = v as number;
    },
  },
];

const HTTP_ONLY = new Set(["status", "body", "cert_days"]);

export function readCheckSections(doc: IniDocument): {
  checks: Record<string, CheckDef>;
  problems: Array<{ where: string; message: string }>;
} {
  const { defs, problems } = readNamedSections<Draft, CheckDef>(doc, {
    prefix: "check",
    name: CHECK_NAME,
    nameRule:
      "a check name is lowercase letters, digits, '_' or '-', starting with a letter (64 at most)",
    what: "a check",
    keys: CHECK_KEYS,
    start: (name, where) => ({
      def: {
        name,
        kind: "tcp",
        target: "",
        intervalMs: DEFAULT_CHECK_INTERVAL_MS,
        timeoutMs: DEFAULT_CHECK_TIMEOUT_MS,
        status: [200, 399],
        body: "",
        certDays: DEFAULT_CERT_DAYS,
        where,
      },
      kinds: [],
    }),
    finish: ({ def }, section, bad) => {
      const kinds = CHECK_KINDS.filter((k) => section.entries.has(k));
      if (kinds.length !== 1)
        bad(
          section.line,
          kinds.length === 0
            ? `says nothing to check: set one of ${CHECK_KINDS.join(", ")}`
            : `sets ${kinds.join(" and ")}: one check per section`,
        );
      for (const k of HTTP_ONLY)
        if (section.entries.has(k) && kinds.length === 1 && kinds[0] !== "http")
          bad(section.entries.get(k)?.line ?? section.line, `${k}: only for an http check`);
      boundTimeout(def, section, bad);
      return def;
    },
  });
  return { checks: defs, problems };
}
