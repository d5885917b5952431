/**
 * The agent-only command, bundled into one file (dist/agent-bundle.cjs) that
 * the primary serves to joining nodes: `agent`, `config`, `service`. It never
 * imports the primary, SQLite or the HTTP server.
 *
 * What a node's service runs, `agent --config FILE` (or with config flags),
 * is parsed here by hand and started without loading commander: commander
 * (and the node:child_process it requires) is 1.5 MiB of a 46 MiB agent,
 * whose budget is 1.15× a bare node process (issue 18). Anything else
 * (help, other commands, a flag this does not know) goes to commander,
 * which says what was wrong.
 */
import { flagName, schemaKeys } from "@picluster/common";
import { attributeName } from "./config-load.js";
import { type CliIo, processIo } from "./io.js";

/** Commander's options record for a plain `agent` command line, or undefined for anything else. */
export function plainAgentOptions(argv: readonly string[]): Record<string, string> | undefined {
  const known = new Set([
    "--config",
    ...schemaKeys().map(({ section, key }) => flagName(section, key)),
  ]);
  const opts: Record<string, string> = {};
  let agent = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "agent" && !agent) {
      agent = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq < 0 ? arg : arg.slice(0, eq);
    if (!known.has(flag)) return undefined;
    const value = eq < 0 ? argv[++i] : arg.slice(eq + 1);
    // A missing value, or a value that looks like a flag: commander's error says which.
    if (value === undefined || (eq < 0 && value.startsWith("-"))) return undefined;
    const name = attributeName(flag);
    // Given twice: commander keeps the last one.
    opts[name] = value;
  }
  return agent ? opts : undefined;
}

export async function agentMain(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const plain = plainAgentOptions(argv);
  if (plain !== undefined) {
    const { runAgent } = await import("./commands/agent-run.js");
    return runAgent(plain, io);
  }
  const { agentProgram } = await import("./agent-program.js");
  return agentProgram(argv, io);
}
