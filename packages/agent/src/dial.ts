/**
 * Opening the link to the primary: TLS 1.3 with the node's pre-shared key
 * (or its one-time join token), or plain TCP when TLS is off for debugging.
 */
import { type Socket, connect as tcpConnect } from "node:net";
import { type TLSSocket, connect as tlsConnect } from "node:tls";
import { foreignCode, PiclusterError, TLS_CIPHERS, TLS_MIN_VERSION } from "@picluster/common";

export interface PskCredential {
  identity: string;
  key: Buffer;
}

export interface DialTarget {
  host: string;
  port: number;
  /** Undefined means plain TCP (TLS off). */
  credential: PskCredential | undefined;
  timeoutMs: number;
}

export class DialError extends PiclusterError {}

/** The TLS alerts a primary answers an unknown, used, expired or revoked key with. */
function isRefusalCode(code: string): boolean {
  return (
    code === "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE" ||
    code === "ERR_SSL_TLSV1_ALERT_HANDSHAKE_FAILURE" ||
    code === "ERR_SSL_TLSV1_ALERT_UNKNOWN_PSK_IDENTITY" ||
    code === "ERR_SSL_SSLV3_ALERT_ILLEGAL_PARAMETER" ||
    code.includes("DECRYPT")
  );
}

/** Whether a dial failed because the primary refused our key (not because it was unreachable). */
export function isRefusal(err: unknown): boolean {
  return err instanceof DialError && isRefusalCode(err.code);
}

/** Why the primary refused us, in words a user can act on. */
function describeDialError(err: NodeJS.ErrnoException): string {
  const code = err.code ?? "";
  if (code === "ECONNREFUSED") return "nothing is listening there (is the primary running?)";
  if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "host unreachable";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host name not found";
  if (
    code === "ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE" ||
    code === "ERR_SSL_TLSV1_ALERT_HANDSHAKE_FAILURE"
  ) {
    return "the primary refused this node's credential (unknown, expired or revoked)";
  }
  if (code === "ERR_SSL_SSLV3_ALERT_ILLEGAL_PARAMETER" || code.includes("DECRYPT")) {
    return "the primary refused this node's credential (wrong key)";
  }
  if (code === "ERR_SSL_WRONG_VERSION_NUMBER")
    return "the primary is not speaking TLS (is its tls off?)";
  return err.message;
}

/**
 * The PSK authenticates the primary. A server that shows a certificate
 * instead is not ours, however well it chains to a public CA.
 */
export function refuseCertificates(_host: string, cert: object | undefined): Error | undefined {
  return cert !== undefined && Object.keys(cert).length > 0
    ? new Error(
        "the server offered a certificate; a picluster primary authenticates with the node's key",
      )
    : undefined;
}

export function dial(target: DialTarget, signal?: AbortSignal): Promise<Socket | TLSSocket> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new DialError("E_ABORTED", "stopped before connecting"));
      return;
    }
    const { credential } = target;
    const socket =
      credential === undefined
        ? tcpConnect({ host: target.host, port: target.port })
        : tlsConnect({
            host: target.host,
            port: target.port,
            minVersion: TLS_MIN_VERSION,
            ciphers: TLS_CIPHERS,
            // No trust store: the link is authenticated by the PSK, never by a
            // certificate (refused below), and without `ca` Node parses its
            // ~140 bundled root certificates into memory (about 1 MiB of the
            // agent's RSS, issue 18).
            ca: [],
            pskCallback: () => ({ identity: credential.identity, psk: credential.key }),
            checkServerIdentity: refuseCertificates,
          });
    const ready = credential === undefined ? "connect" : "secureConnect";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new DialError(
          "E_CONNECT_TIMEOUT",
          `no connection to ${target.host}:${target.port} within ${target.timeoutMs} ms`,
        ),
      );
    }, target.timeoutMs);
    const onAbort = () => {
      clearTimeout(timer);
      socket.destroy();
      reject(new DialError("E_ABORTED", "stopped while connecting"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    const onError = (err: NodeJS.ErrnoException) => {
      signal?.removeEventListener("abort", onAbort);
      clearTimeout(timer);
      socket.destroy();
      reject(
        new DialError(
          err.code === undefined ? "E_CONNECT" : foreignCode(err.code),
          `cannot connect to ${target.host}:${target.port}: ${describeDialError(err)}`,
          { cause: err },
        ),
      );
    };
    socket.once("error", onError);
    socket.once(ready, () => {
      signal?.removeEventListener("abort", onAbort);
      clearTimeout(timer);
      socket.off("error", onError);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 15_000);
      resolve(socket);
    });
  });
}
