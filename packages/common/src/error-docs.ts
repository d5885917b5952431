/** docs/errors.md, rendered from the error catalogue (`npm run docs:errors`). */
import { ERRORS, type ErrorScope, type ErrorSpec } from "./error-codes.js";

const SCOPES: ReadonlyArray<[ErrorScope, string, string]> = [
  ["api", "HTTP API", "What a request to the HTTP API can be answered with."],
  [
    "wire",
    "Agent link",
    "An `error` message on the agent link (docs/protocol.md). The status is what the API answers when a node answered a request with the code.",
  ],
  ["join", "Joining and credentials", "Join tokens, node names, credential files."],
  [
    "store",
    "Store",
    "The primary's SQLite store; every write failure also stops acknowledgements.",
  ],
  ["jobs", "Jobs", "Submitting jobs and the job queue."],
  ["agent", "Agent", "The agent's own failures, in its log and exit."],
  ["config", "Configuration", "Loading configuration and the data directory."],
  ["cli", "Command line", "What `picluster` itself reports."],
];

const cell = (s: string) => s.replace(/\|/g, "\\|");

export function renderErrorDocs(): string {
  const out = [
    "# Error codes",
    "",
    "<!-- Generated from packages/common/src/error-codes.ts by `npm run docs:errors`; do not edit. -->",
    "",
    "Every error picluster reports on purpose has a stable code, the same in",
    'HTTP bodies (`{"error": {"code", "message", "field"?}}`), `error` messages',
    "on the agent link, logs and CLI output (`error: CODE: message`, exit 1).",
    "Each is declared once, with the HTTP status it gets when it reaches the API",
    "and its message; `%s` stands for what the message names (a node, a file,",
    "a field). A site may say more than the template.",
    "",
  ];
  for (const [scope, title, intro] of SCOPES) {
    const rows = Object.entries(ERRORS).filter(([, spec]) => spec.scope === scope);
    out.push(`## ${title}`, "", intro, "", "| Code | HTTP | Message |", "| --- | --- | --- |");
    for (const [code, spec] of rows as Array<[string, ErrorSpec]>)
      out.push(`| \`${code}\` | ${spec.status ?? "–"} | ${cell(spec.message)} |`);
    out.push("");
  }
  return out.join("\n");
}
