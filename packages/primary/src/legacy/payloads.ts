/**
 * The tutorial's message payloads (psutil figures from its Python nodes),
 * checked like any other untrusted input, and mapped onto our own details
 * and vitals. What a tutorial node does not report stays absent.
 */

import type { MessageMap } from "@picluster/common";
import Type, { type Static } from "typebox";
import { Compile } from "typebox/compile";

/*
 * Every figure is range-checked: an unauthenticated peer must not put
 * 1e300 cores or a negative memory into the cluster's totals. The bounds are
 * wide enough for any real machine; a message with a figure outside them is
 * refused, naming the field, and nothing of it is stored.
 */
/** 1 PiB: more memory, swap or disk than any node has. */
export const MAX_LEGACY_BYTES = 2 ** 50;
export const MAX_LEGACY_CORES = 4096;
/** MHz. */
export const MAX_LEGACY_FREQUENCY = 100_000;
/** °C: below and above what any CPU sensor reports while it runs. */
export const LEGACY_TEMPERATURE_RANGE = { min: -100, max: 200 } as const;

const Bytes = Type.Number({ minimum: 0, maximum: MAX_LEGACY_BYTES });
const OptBytes = Type.Optional(Type.Union([Bytes, Type.Null()]));
const Percent = Type.Number({ minimum: 0, maximum: 100 });
const OptFrequency = Type.Optional(
  Type.Union([Type.Number({ minimum: 0, maximum: MAX_LEGACY_FREQUENCY }), Type.Null()]),
);
const Cores = Type.Integer({ minimum: 1, maximum: MAX_LEGACY_CORES });
/**
 * A host name as the tutorial sends it (`socket.gethostname()`): letters,
 * digits, '.', '_' and '-'. Nothing else can be a node's name, so no control
 * character or look-alike reaches a log, a terminal or an alert.
 */
const Hostname = Type.String({
  minLength: 1,
  maxLength: 253,
  pattern: "^[A-Za-z0-9][A-Za-z0-9._-]*$",
});
/** Free text (the CPU model): printable, at most 256 characters. */
const Model = Type.Optional(
  Type.String({ maxLength: 256, pattern: "^[^\\u0000-\\u001f\\u007f-\\u009f]*$" }),
);

/** `machine_details` (early tutorials). */
const MachineDetails = Type.Object({
  hostname: Hostname,
  cpu_percent_used: Type.Optional(Type.Union([Percent, Type.Null()])),
  ram: Bytes,
  cpu: Model,
  cpu_cores: Cores,
});

/** `node_baseinfo`. */
const NodeBaseinfo = Type.Object({
  hostname: Hostname,
  ram: Bytes,
  swap: OptBytes,
  cpu: Model,
  cpu_cores: Cores,
  cpu_frequency_max: OptFrequency,
  cpu_frequency_min: OptFrequency,
});

/** `vitals`, sent every 60 s. */
const LegacyVitals = Type.Object({
  cpu_percentage: Percent,
  cpu_frequency: OptFrequency,
  ram_free: Bytes,
  swap_free: OptBytes,
  cpu_temperature: Type.Optional(
    Type.Union([
      Type.Number({ minimum: LEGACY_TEMPERATURE_RANGE.min, maximum: LEGACY_TEMPERATURE_RANGE.max }),
      Type.Null(),
    ]),
  ),
});

export type LegacyBaseinfo = Static<typeof NodeBaseinfo>;
const checkMachine = Compile(MachineDetails);
const checkBaseinfo = Compile(NodeBaseinfo);
const checkVitals = Compile(LegacyVitals);

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

function parse<T>(
  check: {
    Check(v: unknown): boolean;
    Errors(v: unknown): Array<{ instancePath: string; message: string }>;
  },
  v: unknown,
): Parsed<T> {
  if (check.Check(v)) return { ok: true, value: v as T };
  const [first] = check.Errors(v);
  return {
    ok: false,
    error: first === undefined ? "invalid" : `payload${first.instancePath}: ${first.message}`,
  };
}

/** Both kinds of details message, as one shape (machine_details lacks swap and frequencies). */
export function parseDetails(
  type: "machine_details" | "node_baseinfo",
  payload: unknown,
): Parsed<LegacyBaseinfo> {
  if (type === "node_baseinfo") return parse<LegacyBaseinfo>(checkBaseinfo, payload);
  const r = parse<Static<typeof MachineDetails>>(checkMachine, payload);
  if (!r.ok) return r;
  const { hostname, ram, cpu, cpu_cores } = r.value;
  return { ok: true, value: { hostname, ram, cpu_cores, ...(cpu === undefined ? {} : { cpu }) } };
}

export function parseVitals(payload: unknown): Parsed<Static<typeof LegacyVitals>> {
  return parse(checkVitals, payload);
}

const num = (v: number | null | undefined): number | undefined =>
  typeof v === "number" && Number.isFinite(v) ? v : undefined;
const bytes = (v: number | null | undefined): number => Math.max(0, Math.round(num(v) ?? 0));

export function toDetails(info: LegacyBaseinfo): MessageMap["details"] {
  const minMhz = num(info.cpu_frequency_min);
  const maxMhz = num(info.cpu_frequency_max);
  return {
    hostname: info.hostname,
    os: { name: "unknown (tutorial node)", version: "" },
    kernel: "",
    arch: "",
    cpu: {
      model: info.cpu ?? "",
      cores: info.cpu_cores,
      ...(minMhz === undefined ? {} : { minMhz }),
      ...(maxMhz === undefined ? {} : { maxMhz }),
    },
    memory: { totalBytes: bytes(info.ram), swapBytes: bytes(info.swap) },
    disks: [],
    interfaces: [],
    agentVersion: "tutorial",
    nodeVersion: "",
  };
}

export function toVitals(
  v: Static<typeof LegacyVitals>,
  info: LegacyBaseinfo | undefined,
): MessageMap["vitals"] {
  const total = bytes(info?.ram);
  const available = Math.min(bytes(v.ram_free), total || Number.POSITIVE_INFINITY);
  const swapTotal = bytes(info?.swap);
  const swapFree = bytes(v.swap_free);
  const freq = num(v.cpu_frequency);
  const temp = num(v.cpu_temperature);
  return {
    cpu: { total: Math.min(100, Math.max(0, v.cpu_percentage)), perCore: [] },
    ...(freq === undefined ? {} : { freqMhz: freq }),
    temps: temp === undefined ? [] : [{ zone: "cpu", type: "cpu_temperature", celsius: temp }],
    memory: {
      totalBytes: total,
      usedBytes: Math.max(0, total - available),
      availableBytes: available,
    },
    swap: { totalBytes: swapTotal, usedBytes: Math.max(0, swapTotal - swapFree) },
    disks: [],
    net: [],
  };
}
