/**
 * `picluster token add|list|revoke`: named API tokens with roles
 * (docs/security.md), in this machine's store (the running primary notices
 * a change before the next request); `picluster audit`: the audit log.
 */
import { existsSync, readFileSync } from "node:fs";
import {
  dataFiles,
  describeError,
  durationType,
  processPathContext,
  resolveDataDir,
} from "@picluster/common";
import type { Command } from "commander";
import { whoAmI } from "../api-client.js";
import { configRunner } from "../config-options.js";
import { ago, table } from "../format.js";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../io.js";
import { safeJson, safeLine } from "../safe.js";

export function registerTokenCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const run = configRunner(io, setExit);
  const dataDirOf = (dir: string) => resolveDataDir(dir, { ...processPathContext(), cwd: io.cwd });
  const openTokens = async (config: Parameters<Parameters<typeof run>[1]>[0]) => {
    const { ApiTokens, storeFile } = await import("@picluster/primary");
    const { systemClock } = await import("@picluster/common");
    return new ApiTokens(storeFile(config, dataDirOf(config.node.data_dir)), systemClock).load();
  };
  const token = program
    .command("token")
    .description("named API tokens with roles: viewer, operator, admin (docs/security.md)");

  token
    .command("add <name>")
    .description("make a token and print it once (only its hash is kept)")
    .requiredOption("--role <role>", "viewer (reads), operator (also tasks and jobs), or admin")
    .option("--on <selector>", "limit it to these nodes: label=value, names, a state")
    .option("--expires <duration>", "how long it stays valid (30d, 12h); default: until revoked")
    .option("--json", "print as JSON (name, role, scope, expires, token)")
    .addHelpText(
      "after",
      "\nExamples:\n  picluster token add grafana --role viewer\n  picluster token add lab2-teacher --role operator --on room=lab2 --expires 120d\n  picluster token add family --role viewer --on group=home --json\n",
    )
    .action(
      (
        name: string,
        opts: { role: string; on?: string; expires?: string; json?: boolean },
        cmd: Command,
      ) =>
        run(cmd, async (config) => {
          let expiresInMs: number | undefined;
          if (opts.expires !== undefined) {
            const parsed = durationType(60_000, 5 * 365 * 86_400_000).parse(opts.expires);
            if (!parsed.ok) {
              io.err(`error: --expires: expected ${parsed.expected}, got "${opts.expires}"\n`);
              return EXIT_USAGE;
            }
            expiresInMs = parsed.value;
          }
          const tokens = await openTokens(config);
          try {
            const made = tokens.add({
              name,
              role: opts.role,
              ...(opts.on === undefined ? {} : { scope: opts.on }),
              ...(expiresInMs === undefined ? {} : { expiresInMs }),
              createdBy: `cli ${whoAmI()}`,
            });
            const expires =
              made.expiresAt === undefined ? null : new Date(made.expiresAt).toISOString();
            if (opts.json) {
              io.out(
                `${safeJson({ name: made.name, role: made.role, scope: made.scope ?? null, expires, token: made.token })}\n`,
              );
              return EXIT_OK;
            }
            io.out(
              `token "${made.name}" (${made.role}${made.scope === undefined ? "" : ` on ${safeLine(made.scope)}`}${expires === null ? "" : `, until ${expires}`}):\n\n  ${made.token}\n\n` +
                "Shown once: only its hash is kept. Send it as `Authorization: Bearer …`;\n" +
                "the dashboard takes it on its sign-in page, or in a link ending #token=….\n",
            );
            return EXIT_OK;
          } catch (err) {
            io.err(`error: ${safeLine(describeError(err))}\n`);
            return EXIT_USAGE;
          } finally {
            tokens.close();
          }
        }),
    );

  token
    .command("list")
    .description("every token: name, role, scope, made, last used, expiry (never the secret)")
    .option("--json", "print as JSON")
    .action((opts: { json?: boolean }, cmd: Command) =>
      run(cmd, async (config) => {
        const tokens = await openTokens(config);
        try {
          const list = tokens.list();
          if (opts.json) {
            io.out(`${safeJson({ tokens: list })}\n`);
            return EXIT_OK;
          }
          if (list.length === 0) {
            io.out("no named tokens (make one: picluster token add NAME --role viewer)\n");
            return EXIT_OK;
          }
          const now = Date.now();
          io.out(
            table(
              ["NAME", "ROLE", "SCOPE", "MADE", "LAST USED", "EXPIRES", "STATE"],
              list.map((t) => [
                safeLine(t.name),
                t.role,
                safeLine(t.scope ?? "all nodes"),
                ago(t.createdAt, now),
                t.lastUsed === undefined ? "never" : ago(t.lastUsed, now),
                t.expiresAt === undefined ? "never" : new Date(t.expiresAt).toISOString(),
                t.revokedAt !== undefined
                  ? "revoked"
                  : t.expiresAt !== undefined && t.expiresAt <= now
                    ? "expired"
                    : "valid",
              ]),
            ),
          );
          return EXIT_OK;
        } finally {
          tokens.close();
        }
      }),
    );

  token
    .command("revoke <name>")
    .description("refuse the token from the next request on")
    .option("--json", "print as JSON")
    .action((name: string, opts: { json?: boolean }, cmd: Command) =>
      run(cmd, async (config) => {
        const tokens = await openTokens(config);
        try {
          const revoked = tokens.revoke(name);
          if (opts.json) io.out(`${safeJson(revoked)}\n`);
          else io.out(`token "${safeLine(revoked.name)}" revoked\n`);
          return EXIT_OK;
        } catch (err) {
          io.err(`error: ${safeLine(describeError(err))}\n`);
          return EXIT_FAILED;
        } finally {
          tokens.close();
        }
      }),
    );

  program
    .command("audit")
    .description("what was asked of the primary, by whom: the audit log")
    .option("--since <duration>", "only the last … (1h, 7d)", "7d")
    .option("--json", "print JSON lines as stored")
    .action((opts: { since: string; json?: boolean }, cmd: Command) =>
      run(cmd, async (config) => {
        const since = durationType(1_000, 20 * 365 * 86_400_000).parse(opts.since);
        if (!since.ok) {
          io.err(`error: --since: expected ${since.expected}, got "${opts.since}"\n`);
          return EXIT_USAGE;
        }
        const file = dataFiles(dataDirOf(config.node.data_dir)).auditLog;
        if (!existsSync(file)) {
          io.err(`no audit log at ${file} (nothing has been asked of this primary yet)\n`);
          return EXIT_OK;
        }
        const from = Date.now() - since.value;
        const lines = readFileSync(file, "utf8")
          .split("\n")
          .filter((l) => l !== "")
          .flatMap((l) => {
            try {
              const r = JSON.parse(l) as Record<string, unknown>;
              return Date.parse(String(r.time)) >= from ? [r] : [];
            } catch {
              return [];
            }
          });
        if (opts.json) {
          for (const r of lines) io.out(`${safeJson(r)}\n`);
          return EXIT_OK;
        }
        io.out(
          table(
            ["TIME", "EVENT", "BY", "WHAT"],
            lines.map(({ time, event, by, requestedBy, ...rest }) => [
              String(time),
              safeLine(String(event ?? "")),
              safeLine(String(by ?? requestedBy ?? "")),
              safeLine(
                Object.entries(rest)
                  .filter(([, v]) => v !== undefined && typeof v !== "object")
                  .map(([k, v]) => `${k}=${String(v)}`)
                  .join(" "),
              ),
            ]),
          ),
        );
        return EXIT_OK;
      }),
    );
}
