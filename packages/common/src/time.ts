/**
 * Times and durations for people: alert messages, the CLI's listings. A
 * time printed anywhere says, or sits under a header that says, which zone
 * it is in; a duration is in words ("1 min 6 s"), never a count of ms.
 */

/** "850 ms", "42 s", "1 min 6 s", "3 h 2 min", "2 d 4 h": two units at most, rounded down. */
export function durationWords(ms: number): string {
  const total = Math.max(0, Math.floor(ms));
  if (total < 1_000) return `${total} ms`;
  const s = Math.floor(total / 1_000);
  const pair = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small === 0 ? `${big} ${bigUnit}` : `${big} ${bigUnit} ${small} ${smallUnit}`;
  if (s < 60) return `${s} s`;
  if (s < 3_600) return pair(Math.floor(s / 60), "min", s % 60, "s");
  if (s < 86_400) return pair(Math.floor(s / 3_600), "h", Math.floor((s % 3_600) / 60), "min");
  return pair(Math.floor(s / 86_400), "d", Math.floor((s % 86_400) / 3_600), "h");
}

function parts(ms: number, timeZone: string | undefined): Record<string, string> {
  const fmt = new Intl.DateTimeFormat("en-US", {
    ...(timeZone === undefined ? {} : { timeZone }),
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
    timeZoneName: "longOffset",
  });
  return Object.fromEntries(fmt.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
}

/** The zone's offset at `atMs`: "UTC+01:00", or "UTC" where there is none. */
export function utcOffset(atMs: number, timeZone?: string): string {
  // "GMT+01:00", "GMT-04:00", and for UTC "GMT" (or "GMT+00:00", by ICU version).
  const name = (parts(atMs, timeZone).timeZoneName ?? "GMT").replace(/^GMT/, "UTC");
  return name === "UTC+00:00" ? "UTC" : name;
}

/** The zone the times are in, as a header says it: "UTC+01:00 (Europe/Paris)", or "UTC". */
export function zoneLabel(atMs: number, timeZone?: string): string {
  const name = timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
  const offset = utcOffset(atMs, name);
  return name === undefined || name === "UTC" || name === "Etc/UTC" || name === ""
    ? offset
    : `${offset} (${name})`;
}

/** "2026-12-06 05:52:45": the wall-clock time in the zone (this process's by default). */
export function localTime(ms: number, timeZone?: string): string {
  const p = parts(ms, timeZone);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/**
 * `new Date(ms).toISOString()`, written by hand for the agent's log lines:
 * V8's toISOString asks ICU for the local zone's display name on first use
 * (ToDateString), which maps ICU's zone data and builds its name tables,
 * about 1 MiB of a process's RSS that nothing else in the agent needs
 * (bench/README.md, suite `footprint`). Years 0 to 9999 (a log line's).
 */
export function isoTime(ms: number = Date.now()): string {
  const d = new Date(ms);
  const milli = d.getUTCMilliseconds();
  return `${String(d.getUTCFullYear()).padStart(4, "0")}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}T${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}.${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
}

/**
 * Milliseconds on a monotonic clock (for durations), like `performance.now()`
 * but from `process.hrtime`: the `performance` global loads perf_hooks and
 * its timing modules on first use, 0.26 MiB of RSS in the agent
 * (bench/README.md, suite `footprint`).
 */
export function monotonicMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1_000 + ns / 1e6;
}
