/**
 * `picluster service install agent|primary`: the tutorial's auto-start
 * step, as a systemd unit with restart on failure and a dedicated user.
 * Every external command is spawned with an argument array, never a shell.
 */
import { existsSync, mkdirSync, realpathSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { AGENT_NODE_FLAGS, describeError } from "@picluster/common";
import type { Command } from "commander";
import { type CliIo, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../io.js";

const ROLES = ["agent", "primary"] as const;
type Role = (typeof ROLES)[number];

export interface UnitOptions {
  role: Role;
  node: string;
  bin: string;
  config: string;
  user: string;
}

export function unitText(o: UnitOptions): string {
  return [
    "# Written by `picluster service install`; edit with `systemctl edit` to keep changes across reinstalls.",
    "[Unit]",
    `Description=picluster ${o.role}`,
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `User=${o.user}`,
    `Group=${o.user}`,
    `ExecStart=${[o.node, ...(o.role === "agent" ? AGENT_NODE_FLAGS : []), o.bin, o.role].join(" ")} --config ${o.config}`,
    "Environment=PICLUSTER_LOG_FORMAT=json",
    "StateDirectory=picluster",
    "StateDirectoryMode=0700",
    "Restart=on-failure",
    "RestartSec=5",
    // The agent says bye and exits within 2 s of SIGTERM; the primary flushes its store.
    "TimeoutStopSec=10",
    "NoNewPrivileges=yes",
    "ProtectSystem=full",
    "ProtectHome=read-only",
    "PrivateTmp=yes",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** Where the unit's sandboxing (PrivateTmp, ProtectHome) keeps a file from the service. */
const HIDDEN: ReadonlyArray<{ under: string; why: string }> = [
  { under: "/tmp/", why: "PrivateTmp=yes gives the service an empty /tmp of its own" },
  { under: "/var/tmp/", why: "PrivateTmp=yes gives the service an empty /var/tmp of its own" },
  {
    under: "/root/",
    why: "/root is closed to the service's user, and ProtectHome=read-only guards it too",
  },
  {
    under: "/home/",
    why: "ProtectHome=read-only guards home directories, which are often closed to other users (the service's)",
  },
  { under: "/run/user/", why: "ProtectHome=read-only guards /run/user" },
];

/**
 * What is wrong with the config file the unit will name: missing, or
 * somewhere the service cannot see it. Warnings: the unit is still right
 * once the file is where it says.
 */
export function configWarnings(config: string): string[] {
  if (!existsSync(config))
    return [
      `${config} does not exist: the service cannot start until it does (\`picluster init\` writes one for a primary; pass --config FILE for another)`,
    ];
  let real = config;
  try {
    real = realpathSync(config);
  } catch {
    // Unreadable on the way: judged by the path as given.
  }
  const hidden = HIDDEN.find((h) => config.startsWith(h.under) || real.startsWith(h.under));
  return hidden === undefined
    ? []
    : [
        `${config} will not be readable by the service: ${hidden.why}; move it to /etc/picluster/ and pass that path to --config`,
      ];
}

interface Step {
  what: string;
  argv: string[];
}

export function registerServiceCommand(
  program: Command,
  io: CliIo,
  setExit: (code: number) => void,
): void {
  const service = program.command("service").description("run picluster as a system service");
  service
    .command("install <role>")
    .description("install and start a systemd unit for `agent` or `primary`")
    .option("--dry-run", "print the unit and the commands, change nothing")
    .option("--unit-dir <dir>", "where the unit file goes", "/etc/systemd/system")
    .option("--user <name>", "the dedicated user the service runs as", "picluster")
    .option("--json", "print what was (or would be) done as JSON")
    .addHelpText(
      "after",
      "\nExample:\n  sudo picluster service install agent --config /etc/picluster/picluster.ini\n",
    )
    .action(
      async (
        role: string,
        opts: { dryRun?: boolean; unitDir: string; user: string; json?: boolean },
        cmd: Command,
      ) => {
        if (!(ROLES as readonly string[]).includes(role)) {
          io.err(`error: role: expected agent or primary, got "${role}"\n`);
          return setExit(EXIT_USAGE);
        }
        if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(opts.user)) {
          io.err(`error: --user: expected a system user name, got "${opts.user}"\n`);
          return setExit(EXIT_USAGE);
        }
        const globals = cmd.optsWithGlobals();
        const config =
          typeof globals.config === "string"
            ? resolve(io.cwd, globals.config)
            : "/etc/picluster/picluster.ini";
        const unitName = `picluster-${role}.service`;
        const unitFile = join(resolve(io.cwd, opts.unitDir), unitName);
        const text = unitText({
          role: role as Role,
          node: process.execPath,
          // The script this process runs: bin/picluster.js, or the agent bundle a node installed.
          bin: resolve(
            process.argv[1] ?? new URL("../../../bin/picluster.js", import.meta.url).pathname,
          ),
          config,
          user: opts.user,
        });
        const steps: Step[] = [
          {
            what: `create the system user ${opts.user}`,
            argv: [
              "useradd",
              "--system",
              "--no-create-home",
              "--shell",
              "/usr/sbin/nologin",
              opts.user,
            ],
          },
          { what: "reload systemd", argv: ["systemctl", "daemon-reload"] },
          {
            what: `enable and start ${unitName}`,
            argv: ["systemctl", "enable", "--now", unitName],
          },
        ];
        const warnings = configWarnings(config);
        // A real install refuses a missing file below, with an error of its own.
        if (opts.dryRun || existsSync(config)) for (const w of warnings) io.err(`warning: ${w}\n`);
        if (opts.dryRun) {
          if (opts.json)
            io.out(
              `${JSON.stringify({ dryRun: true, unitFile, unit: text, commands: steps.map((s) => s.argv), warnings })}\n`,
            );
          else {
            io.out(`# would write ${unitFile}:\n${text}\n# would run:\n`);
            for (const s of steps) io.out(`${s.argv.join(" ")}    # ${s.what}\n`);
          }
          return setExit(EXIT_OK);
        }
        if (process.getuid?.() !== 0) {
          io.err(
            "error: installing a service needs root: run it with sudo (or see what it would do with --dry-run)\n",
          );
          return setExit(EXIT_FAILED);
        }
        if (!existsSync(config)) {
          io.err(
            `error: ${config} does not exist: create it first (\`picluster init\` for a primary) or pass --config\n`,
          );
          return setExit(EXIT_FAILED);
        }
        try {
          // Loaded here, not at start: the agent's process never needs it otherwise (RSS).
          const { spawnSync } = await import("node:child_process");
          mkdirSync(resolve(unitFile, ".."), { recursive: true });
          writeFileSync(unitFile, text, { mode: 0o644 });
          for (const s of steps) {
            if (s.argv[0] === "useradd" && spawnSync("id", ["-u", opts.user]).status === 0)
              continue;
            const r = spawnSync(s.argv[0] as string, s.argv.slice(1), { encoding: "utf8" });
            if (r.status !== 0)
              throw new Error(`${s.what} failed: ${(r.stderr || r.error?.message || "").trim()}`);
          }
        } catch (err) {
          io.err(`error: ${describeError(err)}\n`);
          return setExit(EXIT_FAILED);
        }
        if (opts.json) io.out(`${JSON.stringify({ dryRun: false, unitFile })}\n`);
        else
          io.out(
            `installed and started ${unitName} (${unitFile}); logs: journalctl -u ${unitName}\n`,
          );
        setExit(EXIT_OK);
      },
    );
}
