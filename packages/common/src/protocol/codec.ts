/**
 * Framing and packaging of messages: bytes in, messages or errors out.
 * Pure: no sockets, timers or logs, and any chunk boundary decodes the same
 * (a frame split at every byte, many frames in one chunk, a multi-byte UTF-8
 * character split across chunks).
 *
 * Two formats share the interface:
 *  - NDJSON (protocol v1): one JSON envelope per line, `\n` terminated.
 *  - legacy: the tutorial's DataPackager, `{"type","payload"}` objects each
 *    followed by `\r`.
 */
import { DecodeError, FrameTooLargeError } from "../errors.js";
import { type Envelope, parseEnvelope } from "./envelope.js";

export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into frames at a delimiter byte. Holds at most
 * `maxFrameBytes` of an unfinished frame: past that it reports one
 * FrameTooLargeError and discards bytes up to the next delimiter.
 */
export class FrameSplitter {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private discarding = false;

  constructor(
    private readonly delimiter: number,
    readonly maxFrameBytes: number,
  ) {}

  feed(chunk: Uint8Array): Array<Uint8Array | FrameTooLargeError> {
    const out: Array<Uint8Array | FrameTooLargeError> = [];
    let start = 0;
    while (start < chunk.length) {
      const end = chunk.indexOf(this.delimiter, start);
      if (end < 0) {
        this.hold(chunk.subarray(start), out);
        break;
      }
      const piece = chunk.subarray(start, end);
      start = end + 1;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      if (this.pendingBytes + piece.length > this.maxFrameBytes) {
        out.push(new FrameTooLargeError(this.maxFrameBytes));
        this.reset();
        continue;
      }
      if (this.pending.length === 0) {
        out.push(piece);
      } else {
        this.pending.push(piece);
        out.push(Buffer.concat(this.pending, this.pendingBytes + piece.length));
        this.reset();
      }
    }
    return out;
  }

  /** Bytes of an unfinished frame currently held. */
  get buffered(): number {
    return this.pendingBytes;
  }

  private hold(rest: Uint8Array, out: Array<Uint8Array | FrameTooLargeError>): void {
    if (this.discarding || rest.length === 0) return;
    if (this.pendingBytes + rest.length > this.maxFrameBytes) {
      out.push(new FrameTooLargeError(this.maxFrameBytes));
      this.reset();
      this.discarding = true;
      return;
    }
    // Socket chunks are not reused by Node, so holding a view is safe.
    this.pending.push(rest);
    this.pendingBytes += rest.length;
  }

  private reset(): void {
    this.pending = [];
    this.pendingBytes = 0;
  }
}

/** Bytes in, messages (or the reason each frame was refused) out. */
export interface MessageDecoder<M> {
  feed(chunk: Uint8Array): Array<M | DecodeError>;
}

/** A message out, one complete frame of bytes. */
export interface MessageEncoder<M> {
  encode(message: M): Buffer;
}

function isBlank(frame: Uint8Array): boolean {
  for (const b of frame) if (b !== 0x20 && b !== 0x09 && b !== CR && b !== LF) return false;
  return true;
}

function parseJson(frame: Uint8Array): unknown {
  // Frames cut from socket chunks are Buffers already; wrap only plain Uint8Arrays.
  const text = (
    Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength)
  ).toString("utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new DecodeError("E_BAD_JSON", `frame is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/**
 * Frames at a delimiter, each parsed as JSON and then by `toMessage`; the
 * two wire formats differ only in those two choices.
 */
class JsonFrameDecoder<M> implements MessageDecoder<M> {
  private readonly splitter: FrameSplitter;

  constructor(
    delimiter: number,
    maxFrameBytes: number,
    private readonly toMessage: (value: unknown) => M,
  ) {
    this.splitter = new FrameSplitter(delimiter, maxFrameBytes);
  }

  feed(chunk: Uint8Array): Array<M | DecodeError> {
    const out: Array<M | DecodeError> = [];
    for (const frame of this.splitter.feed(chunk)) {
      if (frame instanceof DecodeError) {
        out.push(frame);
        continue;
      }
      // Blank frames are allowed as keep-alives and for CRLF peers.
      if (isBlank(frame)) continue;
      try {
        out.push(this.toMessage(parseJson(frame)));
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        out.push(err);
      }
    }
    return out;
  }

  /** Bytes of an unfinished frame currently held. */
  get buffered(): number {
    return this.splitter.buffered;
  }
}

/**
 * Protocol v1 decoder: NDJSON frames, each a validated envelope. The primary
 * passes `parseEnvelopeCompiled` (faster, loads TypeBox); the default loads
 * no schema library.
 */
export class NdjsonDecoder extends JsonFrameDecoder<Envelope> {
  constructor(
    maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
    parse: (value: unknown) => Envelope = parseEnvelope,
  ) {
    super(LF, maxFrameBytes, parse);
  }
}

/**
 * Protocol v1 encoder. JSON.stringify escapes every control character, so a
 * frame never holds a raw newline; a frame over the limit is refused here
 * rather than by the peer.
 */
export class NdjsonEncoder implements MessageEncoder<Envelope> {
  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  encode(message: Envelope): Buffer {
    const frame = Buffer.from(`${JSON.stringify(message)}\n`);
    if (frame.length - 1 > this.maxFrameBytes) throw new FrameTooLargeError(this.maxFrameBytes);
    return frame;
  }
}

/** A message in the tutorial's format; its payload is checked by the legacy handlers. */
export interface LegacyMessage {
  type: string;
  payload: unknown;
}

/** Decoder for the tutorial's DataPackager format: JSON objects each followed by `\r`. */
export class LegacyDecoder extends JsonFrameDecoder<LegacyMessage> {
  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    super(CR, maxFrameBytes, parseLegacy);
  }
}

function parseLegacy(value: unknown): LegacyMessage {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new DecodeError(
      "E_NOT_OBJECT",
      `expected a JSON object, got ${Array.isArray(value) ? "an array" : typeof value}`,
    );
  }
  const { type, payload } = value as Record<string, unknown>;
  if (typeof type !== "string" || type === "") {
    throw new DecodeError("E_INVALID_PAYLOAD", "type: expected a non-empty string", {
      path: "/type",
    });
  }
  return { type, payload };
}

/** Encoder for the tutorial's format, as its Python DataPackager.create_payload writes it. */
export class LegacyEncoder implements MessageEncoder<LegacyMessage> {
  encode(message: LegacyMessage): Buffer {
    return Buffer.from(`${JSON.stringify({ type: message.type, payload: message.payload })}\r`);
  }
}
