/**
 * Accepts agent connections: TLS 1.3 with pre-shared keys by default, plain
 * TCP only when TLS is turned off for debugging. Enforces what must hold
 * before anyone is authenticated: a per-address cap on connections still in
 * the handshake, and a deadline for the TLS handshake itself.
 */
import { createServer as createTcpServer, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import {
  type Clock,
  type Logger,
  PSK_IDENTITY_HINT,
  systemClock,
  TLS_CIPHERS,
  TLS_MIN_VERSION,
} from "@picluster/common";
import type { CredentialStore, PskLookup } from "./credentials.js";
import { listen } from "./listen.js";

export interface ListenerOptions {
  host: string;
  port: number;
  /** Undefined means TLS off (debugging). */
  credentials: CredentialStore | undefined;
  handshakeTimeoutMs: number;
  maxHandshakesPerAddress: number;
  log: Logger;
  /** Times the windows of the refusal log; the system clock when absent. */
  clock?: Clock;
  /** A connection is through TLS (or TCP without it) and ready for the session. */
  onConnection(
    socket: Socket | TLSSocket,
    auth: PskLookup | { kind: "insecure" },
    done: () => void,
  ): void;
}

/** TLS alerts the client caused, in words for the log. */
function describeTlsRefusal(code: string | undefined): string {
  switch (code) {
    case "ERR_SSL_BINDER_DOES_NOT_VERIFY":
      return "wrong key for its credential";
    case "ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM":
    case "ERR_SSL_NO_SHARED_CIPHER":
      return "no usable credential (unknown, revoked, or none offered)";
    case "ECONNRESET":
      return "connection reset during the TLS handshake";
    case "ERR_SSL_WRONG_VERSION_NUMBER":
    case "ERR_SSL_HTTP_REQUEST":
      return "not TLS (a plaintext client on the TLS port?)";
    default:
      return `TLS handshake failed (${code ?? "unknown"})`;
  }
}

function identityOf(found: PskLookup | undefined): string | undefined {
  if (found === undefined) return undefined;
  return found.kind === "node" ? found.identity : `join:${found.tokenId}`;
}

/** At most this many refusal lines per address and window; the rest are counted. */
const REFUSALS_LOGGED_PER_WINDOW = 5;
export const REFUSAL_WINDOW_MS = 60_000;
/** Addresses remembered at most; past it, those that had nothing suppressed are forgotten. */
const MAX_TRACKED_ADDRESSES = 10_000;

interface RefusalWindow {
  start: number;
  count: number;
  /** Set once something was suppressed: tells the count when the window ends. */
  cancel: (() => void) | undefined;
}

/**
 * Keeps a flood of bad handshakes from one address from turning into a
 * flood of log lines: the first few each window are logged, then a count
 * when the window ends (on its own timer, so the count is told even when
 * the flood stops and no later refusal comes to trigger it).
 */
class RefusalLog {
  private readonly windows = new Map<string, RefusalWindow>();

  constructor(
    private readonly log: Logger,
    private readonly clock: Clock,
  ) {}

  warn(address: string, msg: string, fields: Record<string, unknown>): void {
    const now = this.clock.now();
    let w = this.windows.get(address);
    // A timer can be late; a refusal after the window's end closes it first.
    if (w !== undefined && now - w.start >= REFUSAL_WINDOW_MS) {
      this.end(address, w);
      w = undefined;
    }
    if (w === undefined) {
      if (this.windows.size >= MAX_TRACKED_ADDRESSES) this.forgetQuiet();
      w = { start: now, count: 0, cancel: undefined };
      this.windows.set(address, w);
    }
    w.count += 1;
    if (w.count <= REFUSALS_LOGGED_PER_WINDOW) {
      this.log.warn(msg, { peer: address, ...fields });
      return;
    }
    const ending = w;
    ending.cancel ??= this.clock.after(ending.start + REFUSAL_WINDOW_MS - now, () =>
      this.end(address, ending),
    );
  }

  /** Tell what each window suppressed so far (the listener is closing) and stop the timers. */
  close(): void {
    for (const [address, w] of this.windows) this.end(address, w);
  }

  private end(address: string, w: RefusalWindow): void {
    w.cancel?.();
    w.cancel = undefined;
    if (this.windows.get(address) === w) this.windows.delete(address);
    const suppressed = w.count - REFUSALS_LOGGED_PER_WINDOW;
    if (suppressed > 0) {
      this.log.warn("refusals not logged individually", {
        peer: address,
        suppressed,
        windowMs: REFUSAL_WINDOW_MS,
      });
    }
  }

  /** Keep the map small: drop addresses with nothing suppressed (they have no count to tell). */
  private forgetQuiet(): void {
    for (const [address, w] of this.windows)
      if (w.cancel === undefined) this.windows.delete(address);
  }
}

export class AgentListener {
  private server: Server | undefined;
  /** Connections per remote address that have not finished their handshake. */
  private readonly inHandshake = new Map<string, number>();
  private readonly sockets = new Set<Socket>();
  /** Releases the handshake slot of a connection, by `address:port`. */
  private readonly releases = new Map<string, () => void>();

  private readonly refusals: RefusalLog;

  constructor(private readonly opts: ListenerOptions) {
    this.refusals = new RefusalLog(opts.log, opts.clock ?? systemClock);
  }

  async start(): Promise<{ host: string; port: number }> {
    const { credentials, log } = this.opts;
    const auth = new WeakMap<TLSSocket, PskLookup>();
    let server: Server;
    if (credentials !== undefined) {
      server = createTlsServer({
        minVersion: TLS_MIN_VERSION,
        ciphers: TLS_CIPHERS,
        pskIdentityHint: PSK_IDENTITY_HINT,
        handshakeTimeout: this.opts.handshakeTimeoutMs,
        pskCallback: (socket, identity) => {
          let found: PskLookup | undefined;
          try {
            found = credentials.lookup(identity);
          } catch (err) {
            // A credential file broken by hand must not take the listener down.
            log.error("credential store unreadable, refusing the connection", {
              identity,
              err: String(err),
            });
            return null;
          }
          if (found === undefined) {
            this.refusals.warn(
              socket.remoteAddress ?? "?",
              "refused a node: unknown, expired or revoked credential",
              { identity },
            );
            return null;
          }
          auth.set(socket, found);
          return found.key;
        },
      });
      server.on("secureConnection", (socket: TLSSocket) => {
        const found = auth.get(socket);
        if (found === undefined) {
          socket.destroy();
          return;
        }
        this.accept(socket, found);
      });
      server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: TLSSocket) => {
        // With a listener here Node leaves the socket open: close it ourselves.
        socket.destroy();
        this.refusals.warn(socket.remoteAddress ?? "?", "refused a connection", {
          reason: describeTlsRefusal(err.code),
          identity: identityOf(auth.get(socket)),
        });
      });
    } else {
      log.warn(
        "AGENT LISTENER WITHOUT TLS: any node is accepted without a credential and all traffic is in clear. Use only to debug.",
      );
      server = createTcpServer();
    }
    // One listener for both: admit first, and only an admitted plain socket goes on to a session.
    server.on("connection", (socket: Socket) => {
      if (this.admit(socket) && credentials === undefined)
        this.accept(socket, { kind: "insecure" });
    });
    server.on("error", (err) => log.error("agent listener error", { err: String(err) }));
    this.server = server;
    return listen(server, this.opts.host, this.opts.port);
  }

  /** Raw TCP accepted: count it against its address until the handshake is done. False if refused. */
  private admit(socket: Socket): boolean {
    const address = socket.remoteAddress ?? "?";
    const count = this.inHandshake.get(address) ?? 0;
    if (count >= this.opts.maxHandshakesPerAddress) {
      this.opts.log.warn("too many connections in handshake from one address, closing", {
        peer: address,
        limit: this.opts.maxHandshakesPerAddress,
      });
      socket.destroy();
      return false;
    }
    this.inHandshake.set(address, count + 1);
    this.sockets.add(socket);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      const left = (this.inHandshake.get(address) ?? 1) - 1;
      if (left <= 0) this.inHandshake.delete(address);
      else this.inHandshake.set(address, left);
    };
    const key = `${address}:${socket.remotePort}`;
    this.releases.set(key, release);
    socket.once("close", () => {
      release();
      this.releases.delete(key);
      this.sockets.delete(socket);
    });
    return true;
  }

  private accept(socket: Socket | TLSSocket, auth: PskLookup | { kind: "insecure" }): void {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 15_000);
    // A TLS socket wraps the raw one admit() counted; they share the peer's address and port.
    const release = this.releases.get(`${socket.remoteAddress}:${socket.remotePort}`) ?? (() => {});
    this.opts.onConnection(socket, auth, release);
  }

  /** Stop accepting and close every connection. */
  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    this.refusals.close();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }
}
