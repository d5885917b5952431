/**
 * Every configuration key picluster reads: its type, default, meaning, and
 * the older names it is also known by. Validation, defaults, environment
 * variable names, command-line flags and docs/configuration.md are all
 * derived from this table; nothing else defines a key.
 */
import { parseHostPort } from "./addresses.js";
import type { AlertRuleDef } from "./alerts.js";
import type { ChannelDef } from "./channels.js";
import type { CheckDef } from "./checks.js";
import type { CustomMetricDef } from "./custom-metrics.js";
import type { TaskDef } from "./tasks.js";
import {
  booleanType,
  durationType,
  enumType,
  httpUrlType,
  integerType,
  type Labels,
  labelsType,
  listType,
  optionalType,
  sizeType,
  stringType,
  type ValueType,
} from "./types.js";

export interface KeyDef<T> {
  type: ValueType<T>;
  default: T;
  doc: string;
  /** Shown redacted by `config show` and never logged. */
  secret?: boolean;
}

function key<T>(
  type: ValueType<T>,
  defaultValue: T,
  doc: string,
  extra: { secret?: boolean } = {},
): KeyDef<T> {
  return { type, default: defaultValue, doc, ...extra };
}

export const DEFAULT_AGENT_PORT = 12345;
export const DEFAULT_HTTP_PORT = 8123;

const hostName = stringType({
  pattern: /^[A-Za-z0-9.:_%-]*$/,
  patternDoc: "a host name or IP address (or empty)",
});

const primaryAddress: ValueType<string> = {
  name: "string",
  parse(raw) {
    const expected =
      "a host name or address, optionally with `:port` 1–65535 (`[v6]:port` for IPv6)";
    if (!/^(\[[0-9A-Fa-f:.%]+\](:\d{1,5})?|[A-Za-z0-9.:_%-]+)$/.test(raw))
      return { ok: false, expected };
    try {
      parseHostPort(raw, DEFAULT_AGENT_PORT);
    } catch {
      return { ok: false, expected };
    }
    return { ok: true, value: raw };
  },
  format: (v) => v,
};

export const SCHEMA = {
  node: {
    name: key(
      stringType({
        pattern: /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$|^$/,
        patternDoc: "a name of letters, digits, '.', '_' or '-'",
      }),
      "",
      "Name shown for this node on the primary. Empty means the host name.",
    ),
    labels: key<Labels>(
      labelsType,
      {},
      "Labels for selecting nodes, as `key=value` pairs separated by commas, e.g. `rack=a,role=web`.",
    ),
    data_dir: key(
      stringType(),
      "",
      "Where picluster keeps its state (credentials, database). Empty means /var/lib/picluster when run as root, else ~/.local/share/picluster.",
    ),
  },
  agent: {
    primary_host: key(
      listType(primaryAddress),
      ["127.0.0.1"],
      "Host name or address of the primary the agent reports to; in the scale-out mode several, separated by commas, each `host` or `host:port` (`[v6]:port`): the agent stays on the one it reached and on losing it tries the others.",
    ),
    primary_port: key(
      integerType(1, 65535),
      DEFAULT_AGENT_PORT,
      "Port of the primary's agent listener.",
    ),
    tls: key(
      booleanType,
      true,
      "Encrypt and authenticate the link to the primary. Turn off only to debug: everything then crosses the network in clear.",
    ),
    credential: key(
      stringType(),
      "",
      "File holding this node's credential. Empty means `credential.json` in the data directory.",
    ),
    join_token: key(
      stringType(),
      "",
      "One-time token from `picluster node add NAME`, exchanged for this node's own credential on first contact. Not needed afterwards.",
      { secret: true },
    ),
    join_token_file: key(
      stringType(),
      "",
      "File holding the one-time join token instead of `join_token`, so that it never appears on a command line (where `ps` shows it); `-` reads it from standard input. Read when the agent starts without a credential yet; an unreadable or empty file stops the agent with an error naming it.",
    ),
    reconnect_max: key(
      durationType(1_000, 3_600_000),
      30_000,
      "Longest wait between reconnection attempts (exponential backoff with full jitter up to this).",
    ),
    join_refusals: key(
      integerType(0, 100_000),
      5,
      "How many times the primary may refuse this node's join token (unknown, used or expired) before the agent gives up and exits with code 1; 0 means it keeps trying. Only while the node has never had a credential.",
    ),
    outbox_size: key(
      integerType(10, 1_000_000),
      8_640,
      "Vitals samples kept while the primary is unreachable (8 640 is a day at 10 s); past it the oldest are dropped and counted.",
    ),
    max_custom_series: key(
      integerType(1, 1_000),
      100,
      "The most series of the `[metrics.NAME]` sections this node sends with each vitals sample; past it the rest are dropped (in section order, then in the order the output gives them) and the agent logs which, once.",
    ),
  },
  tasks: {
    reboot: key(
      booleanType,
      false,
      "Allow the built-in `reboot` task (`systemctl reboot`). Off until this node's own config turns it on.",
    ),
    shutdown: key(
      booleanType,
      false,
      "Allow the built-in `shutdown` task (`systemctl poweroff`). Off until this node's own config turns it on.",
    ),
    update: key(
      booleanType,
      false,
      "Allow the built-in `update` task (`apt-get update`, then a non-interactive `apt-get upgrade`). Off until this node's own config turns it on.",
    ),
    updates_check: key(
      booleanType,
      true,
      "Allow the built-in `updates.check` task: how many packages can be upgraded (`apt-get -s upgrade`, no change made).",
    ),
    time: key(
      booleanType,
      true,
      "Allow the built-in `time` task: this node's clock and time zone.",
    ),
    version: key(
      booleanType,
      true,
      "Allow the built-in `version` task: agent, Node.js and OS versions.",
    ),
    max_running: key(
      integerType(1, 64),
      4,
      "Tasks this node runs at once; more requests are refused with E_BUSY until one ends.",
    ),
    output_limit: key(
      sizeType(1024, 64 * 1024 ** 2),
      1024 ** 2,
      "Output (stdout and stderr together) sent back per task run; past it output is dropped and the result says `truncated`.",
    ),
  },
  primary: {
    bind_host: key(
      hostName,
      "",
      "Address the agent listener binds to. Empty means every interface.",
    ),
    advertise_host: key(
      hostName,
      "",
      "Host name or address nodes use to reach this primary, in the join command `node add` prints. Empty means this machine's host name.",
    ),
    port: key(
      integerType(0, 65535),
      DEFAULT_AGENT_PORT,
      "Port of the agent listener (0 picks a free port).",
    ),
    heartbeat_interval: key(
      durationType(100, 60_000),
      1_000,
      "How often agents send a heartbeat (sent to them in `welcome`).",
    ),
    vitals_interval: key(
      durationType(1_000, 3_600_000),
      10_000,
      "How often agents send vitals (sent to them in `welcome`).",
    ),
    suspect_after: key(
      durationType(200, 600_000),
      2_500,
      "A connected node that has sent nothing for this long is `suspect`. Legacy nodes, whose keep-alive comes every 5 s, get this scaled by 5 s / heartbeat_interval.",
    ),
    dead_after: key(
      durationType(300, 3_600_000),
      4_500,
      "A node that has sent nothing for this long is `down` (a closed connection is `down` at once).",
    ),
    tls: key(
      booleanType,
      true,
      "Require TLS with per-node credentials on the agent listener. Turn off only to debug: any node is then accepted, in clear.",
    ),
    handshake_timeout: key(
      durationType(100, 60_000),
      5_000,
      "A connection must finish its TLS handshake within this time, and send `hello` within this time after that, or it is closed.",
    ),
    max_handshakes_per_address: key(
      integerType(1, 100_000),
      64,
      "Connections from one address allowed to be in the handshake at once; more are closed at once.",
    ),
    strike_limit: key(
      integerType(1, 1_000),
      5,
      "Bad messages (not JSON, unknown type, invalid payload) a session survives; the next closes it.",
    ),
    max_frame_bytes: key(
      sizeType(1024, 64 * 1024 ** 2),
      1024 ** 2,
      "Largest message accepted on the agent link; a longer one closes the connection.",
    ),
  },
  store: {
    file: key(
      stringType(),
      "",
      "The SQLite database of the primary. Empty means `picluster.db` in the data directory.",
    ),
    raw_retention: key(
      durationType(3_600_000, 365 * 86_400_000),
      48 * 3_600_000,
      "How long every vitals sample is kept.",
    ),
    minute_retention: key(
      durationType(3_600_000, 5 * 365 * 86_400_000),
      30 * 86_400_000,
      "How long 1-minute rollups (min, average, max) are kept.",
    ),
    hour_retention: key(
      durationType(86_400_000, 20 * 365 * 86_400_000),
      365 * 86_400_000,
      "How long 1-hour rollups, and events, are kept.",
    ),
  },
  legacy: {
    port: key(
      optionalType(integerType(0, 65535)),
      undefined,
      "Port of the plaintext listener for the tutorial's Python nodes (`\\r`-separated JSON). Empty means off. Unauthenticated: bind it only on a trusted network.",
    ),
    host: key(hostName, "", "Address the legacy listener binds to. Empty means every interface."),
    max_nodes: key(
      integerType(0, 100_000),
      64,
      "Tutorial nodes the primary keeps, connected or not; a new host name past this is refused (the connection is closed and the refusal logged, counted). Nodes it already knows can always come back.",
    ),
    new_nodes_per_minute: key(
      integerType(1, 10_000),
      8,
      "New tutorial nodes one client address may create per minute; past this its new host names are refused (the connection is closed and the refusal logged, counted). Reconnections of known nodes are not limited.",
    ),
  },
  http: {
    host: key(
      hostName,
      "127.0.0.1",
      "Address the HTTP API, metrics and dashboard bind to. Loopback unless you mean to expose them.",
    ),
    port: key(
      integerType(0, 65535),
      DEFAULT_HTTP_PORT,
      "Port of the HTTP API, metrics and dashboard (0 picks a free port).",
    ),
    token: key(
      stringType(),
      "",
      "The admin token: bearer token for every API call, reads and changes alike (named tokens with roles: `picluster token add`, docs/security.md). Empty, with no named token either, means calls that change state are refused.",
      {
        secret: true,
      },
    ),
    public_read: key(
      booleanType,
      false,
      "Let API reads (nodes, vitals, events, alerts, task and job summaries, /metrics, the dashboard's data) through without a token when `host` is not loopback. On loopback reads are open anyway; state changes always need a token.",
    ),
    status_page: key(
      booleanType,
      false,
      "Serve a public status page at `/status` (and `/status.json`): the checks named in `status_checks`, each with its node, up or down and since when. Read-only, no token, even beyond loopback; it shows no targets, reasons or figures. For a club or a class.",
    ),
    status_checks: key(
      listType(
        stringType({
          pattern: /^([A-Za-z0-9._-]+\/)?[a-z][a-z0-9_-]{0,63}$/,
          patternDoc: "a check name (`web`: that check on every node) or NODE/CHECK (`pi-1/web`)",
        }),
      ),
      [],
      "The checks the status page shows, separated by commas: `web` (that check on every node) or `pi-1/web`. Empty: every check.",
    ),
    token_rate: key(
      integerType(1, 100_000),
      20,
      "Requests per second each named API token may make (bursts up to 5× this); past it a request gets 429 with Retry-After. The admin `token` is not limited.",
    ),
    allowed_hosts: key(
      listType(
        stringType({
          pattern: /^(\*|\*?[A-Za-z0-9.-]+)$/,
          patternDoc: "a host name, `.example.org` for it and its subdomains, or `*` for any",
        }),
      ),
      [],
      "Host names the HTTP API answers to besides loopback names, IP addresses, this machine's host name, `[http] host` and `[primary] advertise_host`; `.example.org` also allows its subdomains, `*` allows any (turns off the DNS-rebinding check). A request naming another host gets 421.",
    ),
    max_connections: key(
      integerType(16, 100_000),
      512,
      "Open HTTP connections at most (event streams included); more are refused by the kernel's accept queue.",
    ),
    max_connections_per_address: key(
      integerType(4, 100_000),
      64,
      "Open HTTP connections from one client address at most (a browser opens about six, plus its event streams); one more is answered 429 and closed, so one client cannot take every connection.",
    ),
    body_limit: key(
      sizeType(1024, 64 * 1024 ** 2),
      64 * 1024,
      "Largest request body any API call accepts (task requests take at most 16 KiB); a larger one gets 413.",
    ),
    headers_timeout: key(
      durationType(1_000, 600_000),
      10_000,
      "A client must send a request's headers within this time.",
    ),
    request_timeout: key(
      durationType(1_000, 3_600_000),
      30_000,
      "A client must send a whole request, body included, within this time (a body trickled in slowly is cut).",
    ),
    idle_timeout: key(
      durationType(1_000, 3_600_000),
      60_000,
      "A connection on which nothing moves for this long is closed (event streams send keep-alives and are exempt). Idle keep-alive connections between requests are closed after 10 s.",
    ),
    max_streams: key(
      integerType(1, 100_000),
      128,
      "Open event streams (`/api/stream`, task output, followed logs) at most; more get 503.",
    ),
    max_streams_per_address: key(
      integerType(1, 100_000),
      16,
      "Open event streams from one client address at most; more get 429.",
    ),
    stream_resume_bytes: key(
      sizeType(4 * 1024, 64 * 1024 ** 2),
      256 * 1024,
      "What one stream resumed with Last-Event-ID may replay at most; past it the client is told to reload (`event: resync`).",
    ),
    stream_stall_timeout: key(
      durationType(500, 600_000),
      5_000,
      "An event-stream client whose socket does not drain within this time is cut.",
    ),
  },
  alerts: {
    enabled: key(
      booleanType,
      true,
      "Evaluate alert rules (the stock ones and `[alert.NAME]` sections) on the primary.",
    ),
    channels: key(
      stringType({
        // Names as [channel.NAME] takes them (channels.ts CHANNEL_NAME), dots included.
        pattern: /^[a-z0-9._,\s-]*$/,
        patternDoc: "channel names separated by commas",
      }),
      "",
      "Channels a rule tells when it names none itself, comma-separated. Empty means every `[channel.NAME]`.",
    ),
    quiet_hours: key(
      stringType({
        pattern: /^$|^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/,
        patternDoc: "HH:MM-HH:MM in the primary's local time, e.g. 22:00-07:00",
      }),
      "",
      "Local time span (`22:00-07:00`) in which only critical alerts are sent (not those about tutorial nodes: see `legacy_quiet_hours`); the others wait and go out as one summary when it ends, if still firing.",
    ),
    legacy_quiet_hours: key(
      booleanType,
      true,
      "In quiet hours, hold every alert about a tutorial (legacy) node, critical ones too: anyone who reaches the unauthenticated legacy listener could otherwise wake you. Off: their critical alerts go out at night like any node's.",
    ),
    summary_after: key(
      integerType(2, 100_000),
      3,
      'When this many nodes or more fire the same rule at once, send one message for all of them ("12 nodes are down").',
    ),
  },
  heartbeat: {
    url: key(
      httpUrlType,
      "",
      "Where the primary says it is alive: a Healthchecks.io or Uptime Kuma push URL, or any webhook, sent a small JSON POST (see `method`) every `interval` so that something outside this machine notices when it dies. Empty means off. Logs name only its host: its path often holds a secret.",
      { secret: true },
    ),
    method: key(
      enumType(["post", "get"] as const),
      "post",
      "`post` sends the JSON body (Healthchecks.io keeps it with each ping; Uptime Kuma 2 takes it); `get` sends the URL alone, for receivers that take nothing else, like Uptime Kuma 1's push URL.",
    ),
    interval: key(
      durationType(1_000, 86_400_000),
      60_000,
      "How often the heartbeat is sent. Give the monitor this as its period and a few intervals of grace.",
    ),
    timeout: key(
      durationType(1_000, 600_000),
      10_000,
      "How long one heartbeat may take; one still unanswered when the next is due is cut then. A failure is logged and the next heartbeat goes at its time.",
    ),
  },
  containers: {
    socket: key(
      stringType(),
      "",
      "The Docker-compatible API socket the agent lists containers from. Empty: the first that exists of /var/run/docker.sock, /run/podman/podman.sock and $XDG_RUNTIME_DIR/podman/podman.sock; `off`: never look.",
    ),
    max: key(
      integerType(1, 200),
      50,
      "The most containers sent with each vitals sample (running ones first, then by name); the rest are counted in the agent's log.",
    ),
    stats_interval: key(
      durationType(1_000, 3_600_000),
      30_000,
      "How often each running container's CPU, memory and network are read (one API request per container, spread over the vitals samples); each vitals sample lists every container's state and carries the latest of these figures. At or below the vitals interval: every sample.",
    ),
  },
  log: {
    dir: key(
      stringType(),
      "",
      "Directory of the log files. Empty means `log/` in the data directory.",
    ),
    level: key(
      enumType(["trace", "debug", "info", "warn", "error", "fatal"] as const),
      "info",
      "Lowest level written.",
    ),
    format: key(
      enumType(["auto", "text", "json"] as const),
      "auto",
      "Console format: `text` for people, `json` for machines, `auto` picks text on a terminal and json otherwise. Files are always JSON lines.",
    ),
    rotate_size: key(
      sizeType(16 * 1024, 1024 ** 3),
      10 * 1024 ** 2,
      "A log file is rotated when it would grow past this size.",
    ),
    rotate_count: key(
      integerType(1, 100),
      5,
      "How many rotated log files are kept besides the current one.",
    ),
    liveness_interval: key(
      durationType(1_000, 3_600_000),
      10_000,
      "How often an `alive` record (uptime, pid, memory) is logged.",
    ),
  },
  cluster: {
    nats: key(
      listType(
        stringType({
          pattern: /^(nats|tls):\/\/[A-Za-z0-9.:_%[\]-]+$/,
          patternDoc: "a NATS server URL such as `nats://h1:4222` (or `tls://…`)",
        }),
      ),
      [],
      "The NATS servers (with JetStream) of the scale-out mode, separated by commas: set, this primary becomes one of several sharing credentials, presence and the leader lease through them (docs/scale-out.md). Empty (the default) is the embedded mode: one primary, no server to install.",
    ),
    name: key(
      stringType({
        pattern: /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$|^$/,
        patternDoc: "a name of letters, digits, '_' or '-'",
      }),
      "",
      "This primary's name among the others; unique in the cluster. Empty means the host name and the agent port (`pi1-12345`).",
    ),
    creds: key(
      stringType(),
      "",
      "A NATS credentials file (`.creds`: a user JWT and its NKey seed) to connect with.",
    ),
    user: key(stringType(), "", "NATS user name, with `password_file`."),
    password_file: key(
      stringType(),
      "",
      "File holding the NATS user's password (its first line), so that it never appears in a config file or a command line.",
    ),
    tls_ca: key(
      stringType(),
      "",
      "CA certificate (PEM) that signs the NATS servers' certificates; set, the connection must be TLS.",
    ),
    tls_cert: key(
      stringType(),
      "",
      "Client certificate (PEM) for NATS servers that verify clients.",
    ),
    tls_key: key(stringType(), "", "The client certificate's private key (PEM)."),
    replicas: key(
      integerType(0, 5),
      0,
      "Copies JetStream keeps of picluster's buckets and stream (1–5). 0 means 1 when `nats` names one server and 3 when it names more (two copies would stop at the loss of either).",
    ),
    lease: key(
      durationType(1_000, 60_000),
      3_000,
      "How long the leader's lease and a primary's presence last without renewal: a primary that vanishes is noticed, and the leadership taken over, within this.",
    ),
    jobs_snapshot_every: key(
      integerType(10, 10_000_000),
      10_000,
      "Messages of the job log (`picluster-jobs`) between two snapshots of the jobs the leader stores in `picluster-jobs-snap`; the log is purged below the snapshot before the newest, so a primary starts from a snapshot and replays at most twice this many messages.",
    ),
  },
} as const;

export type Schema = typeof SCHEMA;
export type SectionName = keyof Schema;
type ValueOf<D> = D extends KeyDef<infer T> ? T : never;
/** The typed configuration every part of picluster receives. */
export type Config = {
  readonly [S in SectionName]: { readonly [K in keyof Schema[S]]: ValueOf<Schema[S][K]> };
} & {
  /** The `[task.NAME]` sections: tasks this node allows (see tasks.ts). */
  readonly task: Readonly<Record<string, TaskDef>>;
  /** The `[metrics.NAME]` sections: this node's own numbers (see custom-metrics.ts). */
  readonly metrics: Readonly<Record<string, CustomMetricDef>>;
  /** The `[check.NAME]` sections: this node's service and endpoint checks (see checks.ts). */
  readonly check: Readonly<Record<string, CheckDef>>;
  /** Alert rules in force: the stock ones as `[alert.NAME]` sections changed them, and your own (see alerts.ts). */
  readonly alert: Readonly<Record<string, AlertRuleDef>>;
  /** The `[channel.NAME]` sections: where alerts are sent (see channels.ts). */
  readonly channel: Readonly<Record<string, ChannelDef>>;
};

export type AnyKeyDef = KeyDef<unknown>;

/** Every key as `section.key` with its definition, in table order. */
export function schemaKeys(): Array<{ section: string; key: string; def: AnyKeyDef }> {
  const out: Array<{ section: string; key: string; def: AnyKeyDef }> = [];
  for (const [section, keys] of Object.entries(SCHEMA)) {
    for (const [name, def] of Object.entries(keys)) {
      out.push({ section, key: name, def: def as AnyKeyDef });
    }
  }
  return out;
}

/**
 * Older names from the tutorial's rpicluster.cfg. An alias is read as its
 * target with a deprecation line; an obsolete key is ignored with a line
 * saying why.
 */
export type Alias =
  | { section: string; key: string; to: `${string}.${string}` }
  | { section: string; key: string; obsolete: string };

const INFLUX = "picluster keeps history in its own store; InfluxDB settings are ignored";

export const ALIASES: readonly Alias[] = [
  { section: "master", key: "socket_port", to: "primary.port" },
  { section: "master", key: "socket_bind_ip", to: "primary.bind_host" },
  { section: "primary", key: "socket_port", to: "primary.port" },
  { section: "primary", key: "socket_bind_ip", to: "primary.bind_host" },
  { section: "slave", key: "master_ip", to: "agent.primary_host" },
  { section: "slave", key: "socket_port", to: "agent.primary_port" },
  { section: "secondary", key: "primary_ip", to: "agent.primary_host" },
  { section: "secondary", key: "socket_port", to: "agent.primary_port" },
  { section: "webserver", key: "webserver_port", to: "http.port" },
  { section: "webserver", key: "webserver_host", to: "http.host" },
  {
    section: "node_config",
    key: "node_type",
    obsolete:
      "the agent detects the board itself; to tag nodes, use [node] labels, e.g. labels = type=raspberrypi",
  },
  { section: "primary", key: "influxdb_host", obsolete: INFLUX },
  { section: "primary", key: "influxdb_port", obsolete: INFLUX },
  { section: "primary", key: "influxdb_database_prefix", obsolete: INFLUX },
];

/** `PICLUSTER_<SECTION>_<KEY>`: the environment variable for a key. */
export function envName(section: string, key: string): string {
  return `PICLUSTER_${section}_${key}`.toUpperCase();
}

/** `--<section>-<key>` with dashes: the command-line flag for a key. */
export function flagName(section: string, key: string): string {
  return `--${section}-${key}`.replaceAll("_", "-");
}

/** The environment variable naming the config file. */
export const CONFIG_ENV = "PICLUSTER_CONFIG";
