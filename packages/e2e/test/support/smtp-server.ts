/**
 * Starts smtp_server.py (aiosmtpd under Debian's /usr/bin/python3) with a
 * self-signed certificate made for 127.0.0.1, and collects the mails it
 * receives. The process ends when the test does.
 */
import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { deadline, scratchDir } from "@picluster/common/testing";
import { generate } from "selfsigned";

export const SYSTEM_PYTHON = "/usr/bin/python3";
const SCRIPT = fileURLToPath(
  // Tests run from dist/test/; the script is only in the source tree.
  new URL("../../../test/support/smtp_server.py", import.meta.url),
);

/** Why the SMTP tests cannot run here, or undefined when they can. */
export function smtpUnavailable(): string | undefined {
  const probe = spawnSync(SYSTEM_PYTHON, ["-c", "import aiosmtpd"], { encoding: "utf8" });
  if (probe.error !== undefined) return `${SYSTEM_PYTHON} cannot run: ${probe.error.message}`;
  if (probe.status !== 0)
    return `${SYSTEM_PYTHON} has no aiosmtpd (apt-get install python3-aiosmtpd; .ci/run does)`;
  return undefined;
}

export interface ReceivedMail {
  server: "starttls" | "tls" | "plain";
  mail_from: string;
  rcpt_tos: string[];
  subject: string;
  from: string;
  to: string;
  text: string;
  starttls: boolean;
  login: string | null;
}

export interface SmtpServers {
  ports: { starttls: number; tls: number; plain: number };
  /** The self-signed certificate the servers use (PEM file). */
  certFile: string;
  mails: ReceivedMail[];
  stderr: () => string;
}

export async function startSmtpServers(
  t: { after(fn: () => Promise<void> | void): void },
  login: { user: string; password: string },
): Promise<SmtpServers> {
  const dir = scratchDir(t, "picluster-smtp-");
  const pems = await generate([{ name: "commonName", value: "localhost" }], {
    keyType: "ec",
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          { type: 7, ip: "127.0.0.1" },
        ],
      },
    ],
  });
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  writeFileSync(certFile, pems.cert);
  writeFileSync(keyFile, pems.private, { mode: 0o600 });

  const child = spawn(SYSTEM_PYTHON, [SCRIPT, certFile, keyFile, login.user, login.password], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  t.after(async () => {
    child.stdin.end(); // the script stops its servers and exits when stdin closes
    try {
      await deadline(exited, 5_000, "smtp_server.py exit");
    } catch {
      child.kill("SIGKILL");
      await exited;
    }
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr += chunk;
  });
  const mails: ReceivedMail[] = [];
  let onReady: (ports: SmtpServers["ports"]) => void = () => {};
  const ready = new Promise<SmtpServers["ports"]>((resolve) => {
    onReady = resolve;
  });
  createInterface({ input: child.stdout }).on("line", (line) => {
    const obj = JSON.parse(line) as { ready?: SmtpServers["ports"]; mail?: ReceivedMail };
    if (obj.ready !== undefined) onReady(obj.ready);
    if (obj.mail !== undefined) mails.push(obj.mail);
  });
  const failed = exited.then(() => {
    throw new Error(`smtp_server.py exited before it was ready: ${stderr}`);
  });
  const ports = await deadline(Promise.race([ready, failed]), 20_000, "SMTP servers ready");
  return { ports, certFile, mails, stderr: () => stderr };
}
