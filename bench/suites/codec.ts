/**
 * codec: how much the protocol v1 decoder (framing + UTF-8 + JSON.parse +
 * envelope/schema validation) costs over JSON.parse alone, on the frame the
 * primary receives most: `vitals`.
 *
 * One buffer of ~200k encoded frames, cut into 64 KiB chunks as a socket
 * delivers them, decoded three ways:
 *  (a) JSON.parse of each frame's string, already split;
 *  (b) a no-op NDJSON reader: split the chunks on \n, UTF-8, JSON.parse;
 *  (c) NdjsonDecoder.feed: (b) plus envelope and payload validation, with
 *      the TypeBox-compiled checks the primary uses;
 *  (d) the same with the schema-free checker the agent uses (json-check.ts),
 *      for information: the agent decodes a few frames a minute.
 */
import {
  DecodeError,
  type Envelope,
  type MessageMap,
  NdjsonDecoder,
  NdjsonEncoder,
  PROTOCOL_VERSION,
  parseEnvelope,
} from "@picluster/common";
import { parseEnvelopeCompiled } from "@picluster/common/schema";
import {
  budget,
  type Case,
  median,
  type SuiteContext,
  type SuiteReport,
  timeInterleaved,
} from "../harness.js";

const FRAMES = 200_000;
const CHUNK_BYTES = 64 * 1024;
const WARMUP = 2;
const REPS = 7;
const SEED = 0x5eed_c0de;

/** Design budgets: decode+validate at most 2× the cost of JSON.parse, and at least 100k vitals/s. */
const MAX_COST_VS_JSON_PARSE = 2;
const MIN_VITALS_PER_SEC = 100_000;

type Vitals = MessageMap["vitals"];

/** mulberry32: small, fast, seeded, so every run decodes the same bytes. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const round = (x: number, digits: number) => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

const GIB = 1024 ** 3;
// A Raspberry Pi 4 Model B 4 GB: MemTotal as the kernel reports it, the
// default 100 MiB dphys swapfile, a 32 GB SD card and a USB SSD.
const MEM_TOTAL = 3_978_113_024;
const SWAP_TOTAL = 104_853_504;
const DISKS = [
  { mount: "/", sizeBytes: 30_450_606_080 },
  { mount: "/boot/firmware", sizeBytes: 535_805_952 },
  { mount: "/mnt/ssd", sizeBytes: 491_173_416_960 },
] as const;

/** A stream of vitals envelopes as one Pi 4 sends them every 5 s, with every number moving. */
export function vitalsFrames(seed: number): (i: number) => Envelope {
  const rnd = prng(seed);
  const t0 = Date.UTC(2026, 10, 25, 8, 0, 0);
  const bootUptime = 86_400 * 3 + 4_321;
  const diskUsed = [
    0.38 * DISKS[0].sizeBytes,
    0.12 * DISKS[1].sizeBytes,
    0.61 * DISKS[2].sizeBytes,
  ];
  let busy = 20;
  let memUsed = 1.1 * GIB;
  return (i) => {
    // A random walk so consecutive samples look like a machine, not noise.
    busy = Math.min(100, Math.max(0, busy + (rnd() - 0.5) * 20));
    memUsed = Math.min(
      MEM_TOTAL * 0.9,
      Math.max(0.4 * GIB, memUsed + (rnd() - 0.5) * 64 * 1024 ** 2),
    );
    const perCore = [0, 1, 2, 3].map(() =>
      round(Math.min(100, Math.max(0, busy + (rnd() - 0.5) * 30)), 1),
    );
    const total = round(perCore.reduce((a, b) => a + b, 0) / perCore.length, 1);
    const cpuTemp = round(42 + busy * 0.3 + rnd() * 3, 3);
    const hot = cpuTemp > 70;
    diskUsed[0] = (diskUsed[0] ?? 0) + Math.floor(rnd() * 200_000);
    diskUsed[2] = (diskUsed[2] ?? 0) + Math.floor(rnd() * 4_000_000);
    const payload: Vitals = {
      cpu: { total, perCore },
      load: [round((busy / 25) * (0.8 + rnd() * 0.4), 2), round(busy / 27, 2), round(busy / 30, 2)],
      freqMhz: busy > 15 ? 1800 : rnd() < 0.5 ? 600 : 1500,
      temps: [
        { zone: "thermal_zone0", type: "cpu-thermal", celsius: cpuTemp },
        { zone: "hwmon2", type: "drivetemp", celsius: round(31 + rnd() * 6, 0) },
      ],
      throttling: {
        source: "firmware",
        underVoltage: false,
        freqCapped: false,
        throttled: hot,
        softTempLimit: hot,
        underVoltageOccurred: i > 40_000,
        freqCappedOccurred: false,
        throttledOccurred: i > 120_000,
        softTempLimitOccurred: i > 120_000,
      },
      rebootRequired: i > 150_000,
      memory: {
        totalBytes: MEM_TOTAL,
        usedBytes: Math.floor(memUsed),
        availableBytes: Math.floor(MEM_TOTAL - memUsed - rnd() * 200 * 1024 ** 2),
      },
      swap: { totalBytes: SWAP_TOTAL, usedBytes: Math.floor(rnd() * 30 * 1024 ** 2) },
      disks: DISKS.map((d, k) => ({
        mount: d.mount,
        usedBytes: Math.floor(diskUsed[k] ?? 0),
        sizeBytes: d.sizeBytes,
      })),
      diskIo: { readBps: round(rnd() ** 3 * 40e6, 1), writeBps: round(rnd() ** 2 * 12e6, 1) },
      net: [
        { iface: "eth0", rxBps: round(rnd() * 2e6, 1), txBps: round(rnd() * 800e3, 1) },
        { iface: "wlan0", rxBps: round(rnd() * 4e3, 1), txBps: round(rnd() * 2e3, 1) },
        { iface: "tailscale0", rxBps: round(rnd() * 60e3, 1), txBps: round(rnd() * 30e3, 1) },
      ],
      uptimeS: bootUptime + i * 5,
      procs: 160 + Math.floor(rnd() * 60),
    };
    return {
      v: PROTOCOL_VERSION,
      type: "vitals",
      ts: t0 + i * 5_000 + Math.floor(rnd() * 40),
      seq: i + 1,
      payload,
    };
  };
}

/**
 * The least a reader can do: split on \n (holding a partial frame across
 * chunks), decode UTF-8, JSON.parse. It returns an array per chunk, as the
 * real decoder does, so (c)/(b) is framing overhead plus validation.
 * The cluster suite's no-op server reads its sockets with it too.
 */
export class NoopNdjsonReader {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  feed(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    for (;;) {
      const end = chunk.indexOf(0x0a, start);
      if (end < 0) {
        if (start < chunk.length) {
          this.pending.push(chunk.subarray(start));
          this.pendingBytes += chunk.length - start;
        }
        return out;
      }
      let text: string;
      if (this.pending.length === 0) {
        text = chunk.toString("utf8", start, end);
      } else {
        this.pending.push(chunk.subarray(start, end));
        text = Buffer.concat(this.pending, this.pendingBytes + end - start).toString("utf8");
        this.pending = [];
        this.pendingBytes = 0;
      }
      out.push(JSON.parse(text));
      start = end + 1;
    }
  }

  get buffered(): number {
    return this.pendingBytes;
  }
}

function expectCount(label: string, expected: number): (got: number) => void {
  return (got) => {
    if (got !== expected) throw new Error(`${label}: decoded ${got} frames, expected ${expected}`);
  };
}

export async function runCodec({ progress }: SuiteContext): Promise<SuiteReport> {
  progress(`building ${FRAMES} vitals frames`);
  const encoder = new NdjsonEncoder();
  const next = vitalsFrames(SEED);
  const encoded: Buffer[] = [];
  let bytes = 0;
  for (let i = 0; i < FRAMES; i++) {
    const frame = encoder.encode(next(i));
    encoded.push(frame);
    bytes += frame.length;
  }
  const stream = Buffer.concat(encoded, bytes);
  encoded.length = 0;

  // Pre-split strings of the very same bytes, without the newline.
  const strings: string[] = new Array(FRAMES);
  for (let i = 0, start = 0; i < FRAMES; i++) {
    const end = stream.indexOf(0x0a, start);
    strings[i] = stream.toString("utf8", start, end);
    start = end + 1;
  }
  const chunks: Buffer[] = [];
  for (let off = 0; off < stream.length; off += CHUNK_BYTES) {
    chunks.push(stream.subarray(off, Math.min(off + CHUNK_BYTES, stream.length)));
  }

  // Sanity: the generator writes frames the protocol accepts, and the
  // validator really checks them (so (c) is not measuring a no-op).
  for (const parse of [parseEnvelopeCompiled, parseEnvelope]) {
    const sample = parse(JSON.parse(strings[0] ?? ""));
    if (sample.type !== "vitals") throw new Error(`sample frame decoded as ${sample.type}`);
    const broken = JSON.parse(strings[0] ?? "") as { payload: Vitals };
    broken.payload.cpu.perCore[3] = 101;
    try {
      parse(broken);
      throw new Error("the validator accepted cpu.perCore[3] = 101");
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
    }
  }
  const decodeAll = (id: string, parse: (value: unknown) => Envelope) => () => {
    const decoder = new NdjsonDecoder(undefined, parse);
    let n = 0;
    for (const chunk of chunks) {
      for (const item of decoder.feed(chunk)) {
        if (item instanceof DecodeError) {
          throw new Error(`${id}: decoder refused a frame: ${item.code} ${item.message}`);
        }
        n++;
      }
    }
    if (decoder.buffered !== 0) throw new Error(`${id}: ${decoder.buffered} bytes left over`);
    return n;
  };

  const cases: Case[] = [
    {
      id: "(a)",
      label: "JSON.parse, pre-split strings",
      run() {
        let n = 0;
        for (let i = 0; i < strings.length; i++) {
          if (JSON.parse(strings[i] as string) !== null) n++;
        }
        return n;
      },
      check: expectCount("(a)", FRAMES),
    },
    {
      id: "(b)",
      label: "no-op NDJSON reader: split + UTF-8 + JSON.parse",
      run() {
        const reader = new NoopNdjsonReader();
        let n = 0;
        for (const chunk of chunks) n += reader.feed(chunk).length;
        if (reader.buffered !== 0) throw new Error(`(b): ${reader.buffered} bytes left over`);
        return n;
      },
      check: expectCount("(b)", FRAMES),
    },
    {
      id: "(c)",
      label: "NdjsonDecoder.feed: (b) + envelope/schema validation (compiled, primary)",
      run: decodeAll("(c)", parseEnvelopeCompiled),
      check: expectCount("(c)", FRAMES),
    },
    {
      id: "(d)",
      label: "NdjsonDecoder.feed: (b) + validation by json-check (agent)",
      run: decodeAll("(d)", parseEnvelope),
      check: expectCount("(d)", FRAMES),
    },
  ];

  const samples = timeInterleaved(cases, { warmup: WARMUP, reps: REPS, progress });
  const measurements = cases.map((c) => {
    const ms = samples.get(c.id) ?? [];
    const med = median(ms);
    return {
      id: c.id,
      label: c.label,
      medianMs: med,
      minMs: Math.min(...ms),
      maxMs: Math.max(...ms),
      samplesMs: ms.map((x) => round(x, 2)),
      unit: "msgs",
      perSecond: FRAMES / (med / 1000),
      mbPerSec: bytes / 1e6 / (med / 1000),
    };
  });
  const [a, b, c, d] = measurements;
  if (a === undefined || b === undefined || c === undefined || d === undefined)
    throw new Error("missing measurements");
  const costVsParse = c.medianMs / a.medianMs;
  const costVsReader = c.medianMs / b.medianMs;

  return {
    suite: "codec",
    description: "protocol v1 decode+validate of Raspberry Pi 4 `vitals` frames vs JSON.parse",
    parameters: {
      frames: FRAMES,
      bytes,
      meanFrameBytes: Math.round(bytes / FRAMES),
      chunkBytes: CHUNK_BYTES,
      chunks: chunks.length,
      warmupRuns: WARMUP,
      timedRuns: REPS,
    },
    measurements,
    ratios: [
      { id: "c/a", label: "cost ratio (c)/(a) = time_c / time_a", value: costVsParse },
      { id: "c/b", label: "cost ratio (c)/(b) = time_c / time_b", value: costVsReader },
      { id: "b/a", label: "cost ratio (b)/(a) = time_b / time_a", value: b.medianMs / a.medianMs },
      { id: "d/a", label: "cost ratio (d)/(a) = time_d / time_a", value: d.medianMs / a.medianMs },
    ],
    budgets: [
      budget(
        "cost-vs-json-parse",
        "decode+validate cost vs JSON.parse, (c)/(a)",
        "<=",
        MAX_COST_VS_JSON_PARSE,
        costVsParse,
        "×",
      ),
      budget(
        "vitals-per-sec",
        "decode+validate throughput, (c)",
        ">=",
        MIN_VITALS_PER_SEC,
        c.perSecond,
        "msgs/s",
      ),
    ],
    notes: [
      "MB/s counts NDJSON input bytes (newlines included), MB = 10^6 bytes; all three cases see the same bytes",
      "figures are medians of the timed runs; cases run interleaved (a, b, c, a, b, c, ...)",
    ],
  };
}
