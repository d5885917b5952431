/** `picluster init` and `picluster node add|revoke|list`: who may join this primary. */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import type { RemovedNode } from "@picluster/common";
import {
  type Config,
  describeError,
  formatDuration,
  processPathContext,
  resolveDataDir,
} from "@picluster/common";
import type { Command } from "commander";
import { ApiError, apiBase, callJson, postJson } from "../api-client.js";
import { loadCliConfig } from "../config-options.js";
import { ago, table } from "../format.js";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../io.js";
import { agentBundlePath } from "../version.js";

async function openStore(opts: Record<string, unknown>, io: CliIo) {
  const loaded = loadCliConfig(opts, io);
  if (loaded === undefined) return undefined;
  const dataDir = resolveDataDir(loaded.config.node.data_dir, {
    ...processPathContext(),
    cwd: io.cwd,
  });
  const { credentialStore, storeFile } = await import("@picluster/primary");
  const { systemClock } = await import("@picluster/common");
  let store: ReturnType<typeof credentialStore> | undefined;
  return {
    loaded,
    dataDir,
    file: storeFile(loaded.config, dataDir),
    /** Opened (and created, with the data directory) on first use only. */
    get store() {
      // The credentials live in the store's database, which lives in the data directory.
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      store ??= credentialStore(loaded.config, dataDir, systemClock).load();
      return store;
    },
  };
}

/**
 * Before writing the store directly (no token for the primary, or none
 * answering): if a primary does answer on the configured port but keeps
 * its nodes in another file, writing ours would make a token (or a
 * revocation) it never sees. Returns why not, or undefined when writing is right.
 */
async function otherPrimary(config: Config, file: string): Promise<string | undefined> {
  let health: { store?: unknown };
  const url = `${apiBase(config)}/healthz`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    health = (await res.json()) as { store?: unknown };
  } catch {
    return undefined; // Nobody answers: this command is the only writer that matters.
  }
  const { storeFingerprint } = await import("@picluster/primary");
  if (typeof health.store !== "string" || health.store === storeFingerprint(file)) return undefined;
  return `the primary answering at ${apiBase(config)} keeps its nodes in another data directory than this command (${file}), so what this command wrote there would not count. Run it with that primary's config (--config, or --node-data-dir), or give it the primary's API token (--http-token, [http] token, or the http-token file \`picluster up\` made in its data directory) so it asks the primary itself`;
}

/** An operation that failed (a refused name, a full disk): one line, exit 1. */
function fail(io: CliIo, err: unknown): number {
  io.err(`error: ${describeError(err)}\n`);
  return EXIT_FAILED;
}

export function registerNodeCommands(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  program
    .command("init")
    .description("prepare this machine as a primary: data directory, credential store, config file")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExample:\n  sudo picluster init && sudo picluster primary\n")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const globals = cmd.optsWithGlobals();
      // `--config FILE` names the file init writes; it need not exist yet.
      const target =
        typeof globals.config === "string" ? resolve(io.cwd, globals.config) : undefined;
      const ctx = await openStore(
        target !== undefined && !existsSync(target) ? { ...globals, config: undefined } : globals,
        io,
      );
      if (ctx === undefined) return setExit(EXIT_USAGE);
      const paths = processPathContext();
      const configFile =
        typeof globals.config === "string"
          ? resolve(io.cwd, globals.config)
          : (ctx.loaded.file ??
            (paths.uid === 0 ? "/etc/picluster/picluster.ini" : join(io.cwd, "picluster.ini")));
      try {
        mkdirSync(ctx.dataDir, { recursive: true, mode: 0o700 });
        ctx.store.init();
        const wroteConfig = !existsSync(configFile);
        if (wroteConfig) {
          mkdirSync(resolve(configFile, ".."), { recursive: true });
          const text = [
            "# picluster primary, written by `picluster init`. Every key: docs/configuration.md",
            "[node]",
            `data_dir = ${ctx.dataDir}`,
            "",
            "[primary]",
            `port = ${ctx.loaded.config.primary.port}`,
            "",
            "[http]",
            "# Bearer token for API calls that change state.",
            `token = ${randomBytes(24).toString("base64url")}`,
            "",
          ].join("\n");
          writeFileSync(configFile, text, { mode: 0o600 });
        }
        const result = {
          dataDir: ctx.dataDir,
          credentials: ctx.store.file,
          configFile,
          wroteConfig,
        };
        if (opts.json) io.out(`${JSON.stringify(result)}\n`);
        else {
          io.out(`data directory: ${ctx.dataDir}\ncredential store: ${ctx.store.file}\n`);
          io.out(
            wroteConfig
              ? `config written: ${configFile}\n`
              : `config kept: ${configFile} (already there)\n`,
          );
          io.out("next: run `picluster primary`, then `picluster node add NAME` for each node\n");
        }
        setExit(EXIT_OK);
      } catch (err) {
        setExit(fail(io, err));
      }
    });

  const node = program
    .command("node")
    .description("manage which nodes may join, revoke them, forget them");

  node
    .command("add <name>")
    .description("print a one-time join token for a new node")
    .option("--ttl <duration>", "how long the token stays valid", "24h")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExample:\n  picluster node add pi-01\n")
    .action(async (name: string, opts: { ttl: string; json?: boolean }, cmd: Command) => {
      const ctx = await openStore(cmd.optsWithGlobals(), io);
      if (ctx === undefined) return setExit(EXIT_USAGE);
      const { durationType } = await import("@picluster/common");
      const ttl = durationType(60_000, 30 * 86_400_000).parse(opts.ttl);
      if (!ttl.ok) {
        io.err(`error: --ttl: expected ${ttl.expected}, got "${opts.ttl}"\n`);
        return setExit(EXIT_USAGE);
      }
      try {
        // Through the running primary when it answers, else the store directly (one SQLite transaction).
        const viaPrimary = await postJson<{
          token: string;
          command?: string | null;
          manual?: string | null;
          primaries?: number;
        }>(ctx.loaded.config, `/api/nodes/${encodeURIComponent(name)}/join-token?ttl=${ttl.value}`);
        if (viaPrimary === undefined) {
          const refusal = await otherPrimary(ctx.loaded.config, ctx.file);
          if (refusal !== undefined) {
            io.err(`error: ${refusal}\n`);
            return setExit(EXIT_FAILED);
          }
        }
        const token = viaPrimary?.token ?? ctx.store.addToken(name, ttl.value);
        const { config } = ctx.loaded;
        const { joinCommand, joinSettings, sha256 } = await import("@picluster/primary");
        const host = config.primary.advertise_host || hostname();
        // The token on standard input (printf is a shell builtin): never in a process's arguments.
        // Scale-out: the primary's own lines, which name every primary.
        const several = (viaPrimary?.primaries ?? 1) > 1;
        const manual =
          several && typeof viaPrimary?.manual === "string"
            ? viaPrimary.manual
            : `printf '%s\\n' ${token} | picluster agent --agent-primary-host ${host} --agent-primary-port ${config.primary.port} --agent-join-token-file -`;
        const bundle = agentBundlePath();
        const oneLine =
          several && typeof viaPrimary?.command === "string"
            ? viaPrimary.command
            : existsSync(bundle)
              ? joinCommand(
                  joinSettings(config, config.primary.port, sha256(readFileSync(bundle))),
                  token,
                  name,
                )
              : undefined;
        const loopbackHttp = ["127.0.0.1", "::1", "localhost"].includes(config.http.host);
        if (opts.json) {
          io.out(
            `${JSON.stringify({ name, token, validFor: formatDuration(ttl.value), command: manual, install: oneLine ?? null })}\n`,
          );
        } else {
          io.out(
            `join token for ${name} (one use, valid ${formatDuration(ttl.value)}):\n  ${token}\n`,
          );
          if (oneLine !== undefined)
            io.out(
              `on the new node, paste (it fetches the agent from this primary, checks it and installs the service):\n  ${oneLine}\n`,
            );
          io.out(`or, where picluster is already installed:\n  ${manual}\n`);
        }
        if (oneLine !== undefined && loopbackHttp) {
          io.err(
            `note: the HTTP API listens on ${config.http.host} only, so other machines cannot fetch the agent: set [http] host (and [http] token) to serve joins\n`,
          );
        }
        setExit(EXIT_OK);
      } catch (err) {
        setExit(fail(io, err));
      }
    });

  node
    .command("revoke <name>")
    .description("revoke a node's credential; a connected node is cut off within a second")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExample:\n  picluster node revoke pi-01\n")
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const ctx = await openStore(cmd.optsWithGlobals(), io);
      if (ctx === undefined) return setExit(EXIT_USAGE);
      try {
        const viaPrimary = await postJson<{ revoked: string[] }>(
          ctx.loaded.config,
          `/api/nodes/${encodeURIComponent(name)}/revoke`,
        );
        if (viaPrimary === undefined) {
          const refusal = await otherPrimary(ctx.loaded.config, ctx.file);
          if (refusal !== undefined) {
            io.err(`error: ${refusal}\n`);
            return setExit(EXIT_FAILED);
          }
        }
        const revoked = viaPrimary?.revoked ?? ctx.store.revoke(name);
        if (opts.json) io.out(`${JSON.stringify({ name, revoked })}\n`);
        else io.out(`revoked ${name}: ${revoked.length} credential(s); pending tokens removed\n`);
        setExit(EXIT_OK);
      } catch (err) {
        setExit(fail(io, err));
      }
    });

  node
    .command("remove <name>")
    .description(
      "forget a node: revoke it, cut it off, delete its record and (unless --keep-history) its samples and events",
    )
    .option(
      "--keep-history",
      "keep its samples and events (a node that joins again with the same id continues them)",
    )
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      "\nNeeds the running primary (and the API token, as `node revoke` does).\nExamples:\n  picluster node remove pi-01\n  picluster node remove pi-01 --keep-history\n",
    )
    .action(async (name: string, opts: { keepHistory?: boolean; json?: boolean }, cmd: Command) => {
      const loaded = loadCliConfig(cmd.optsWithGlobals(), io);
      if (loaded === undefined) return setExit(EXIT_USAGE);
      try {
        // Only through the running primary, never the store alone: the primary holds the
        // node in memory and would write it back, and only it can cut the node's session
        // and resolve its alerts. A primary that does not answer cannot be told from one
        // that is not running, so there is no fallback to the file.
        const removed = await callJson<RemovedNode>(
          loaded.config,
          "DELETE",
          `/api/nodes/${encodeURIComponent(name)}${opts.keepHistory ? "?keepHistory=true" : ""}`,
        );
        if (opts.json) io.out(`${JSON.stringify(removed)}\n`);
        else io.out(`${describeRemoval(removed)}\n`);
        setExit(EXIT_OK);
      } catch (err) {
        if (err instanceof ApiError && err.code === "E_NO_PRIMARY") {
          io.err(
            `error: ${describeError(err)}\nnode remove works through the running primary only (it holds the node in memory and would write it back); start it and try again. \`picluster node revoke ${name}\` works without it.\n`,
          );
          return setExit(EXIT_FAILED);
        }
        setExit(fail(io, err));
      }
    });

  node
    .command("list")
    .description("list nodes that may join, with their credential status")
    .option("--json", "print as JSON")
    .addHelpText("after", "\nExample:\n  picluster node list\n")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const ctx = await openStore(cmd.optsWithGlobals(), io);
      if (ctx === undefined) return setExit(EXIT_USAGE);
      const list = ctx.store.list();
      if (opts.json) io.out(`${JSON.stringify(list)}\n`);
      else if (list.length === 0)
        io.out("no nodes yet: `picluster node add NAME` makes a join token for one\n");
      else {
        const now = Date.now();
        const when = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace("T", " ");
        io.out(
          table(
            ["NAME", "STATUS", "CREATED (UTC)", "NODE / TOKEN"],
            list.map((c) => [
              c.name,
              c.status,
              when(c.createdAt),
              c.status === "pending" && c.expiresAt !== undefined
                ? `token expires in ${ago(now, c.expiresAt)} (${when(c.expiresAt)} UTC)`
                : c.nodeId === undefined
                  ? ""
                  : `node ${c.nodeId}`,
            ]),
          ),
        );
      }
      setExit(EXIT_OK);
    });
}

/** "removed pi-01 (id …): credential revoked, 1 connection cut, …" */
function describeRemoval(r: RemovedNode): string {
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? "" : "s"}`;
  const parts = [
    r.revoked.length > 0 ? "credential revoked" : "no credential to revoke",
    `${plural(r.sessionsCut, "connection")} cut`,
    `${plural(r.alertsResolved, "firing alert")} resolved (nobody told)`,
    r.keepHistory
      ? "samples and events kept"
      : `${plural(r.vitalsRows, "sample row")} and ${plural(r.events, "event")} deleted`,
  ];
  return `removed ${r.name} (id ${r.id}): ${parts.join(", ")}`;
}
