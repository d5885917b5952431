/** Host name, OS name and version, and kernel release. */
import type { CollectorContext } from "./context.js";
import { clip, readOptional } from "./read.js";

export interface OsInfo {
  hostname: string;
  os: { name: string; version: string };
  kernel: string;
}

/**
 * os-release is shell-like `KEY=value` lines; values may be quoted in double
 * (with backslash escapes) or single quotes.
 */
export function parseOsRelease(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*?)\s*$/.exec(line);
    if (m === null) continue;
    const [, key = "", raw = ""] = m;
    let value = raw;
    if (raw.length >= 2 && raw.startsWith('"') && raw.endsWith('"')) {
      value = raw.slice(1, -1).replace(/\\([$"\\`])/g, "$1");
    } else if (raw.length >= 2 && raw.startsWith("'") && raw.endsWith("'")) {
      value = raw.slice(1, -1);
    }
    fields.set(key, value);
  }
  return fields;
}

/**
 * The host name from os facts (which tests and the e2e cluster override per
 * agent), else proc/sys/kernel/hostname; on a real node they are the same.
 * The OS as NAME and VERSION_ID ("Debian GNU/Linux", "12"); PRETTY_NAME only
 * when NAME is missing, since it repeats the version. Rolling releases have
 * no VERSION_ID, so VERSION then BUILD_ID stand in. Without os-release (in
 * /etc, else /usr/lib), the kernel's type and release from os facts.
 */
export async function readOsInfo(ctx: CollectorContext): Promise<OsInfo> {
  const [hostnameFile, osrelease, etcRelease, libRelease] = await Promise.all([
    readOptional(ctx, "proc/sys/kernel/hostname"),
    readOptional(ctx, "proc/sys/kernel/osrelease"),
    readOptional(ctx, "etc/os-release"),
    readOptional(ctx, "usr/lib/os-release"),
  ]);
  const release = parseOsRelease(etcRelease ?? libRelease ?? "");
  const name = release.get("NAME") || release.get("PRETTY_NAME") || ctx.os.type();
  const version =
    release.get("VERSION_ID") ||
    release.get("VERSION") ||
    release.get("BUILD_ID") ||
    (release.size === 0 ? ctx.os.release() : "");
  return {
    hostname: clip(ctx.os.hostname().trim() || hostnameFile?.trim() || "", 253),
    os: { name: clip(name, 128), version: clip(version, 128) },
    kernel: clip(osrelease?.trim() || ctx.os.release(), 128),
  };
}
