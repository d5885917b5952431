/** The CLI's way to the running primary: its HTTP API, found from the config. */

import { hostname, userInfo } from "node:os";
import type { Config } from "@picluster/common";
import {
  dataFiles,
  describeError,
  foreignCode,
  localHttpToken,
  PiclusterError,
  processPathContext,
  resolveDataDir,
} from "@picluster/common";

export class ApiError extends PiclusterError {}

export function apiBase(config: Config): string {
  const host =
    config.http.host === "" || config.http.host === "0.0.0.0" ? "127.0.0.1" : config.http.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${config.http.port}`;
}

/**
 * The bearer token to send: `[http] token`, or the one `picluster up` made
 * in the data directory when none is configured.
 */
export function apiToken(config: Config): string {
  if (config.http.token !== "") return config.http.token;
  return localHttpToken(resolveDataDir(config.node.data_dir, processPathContext()), false) ?? "";
}

/** Where `picluster up`, run as this user with this config, keeps the token it made. */
export function localTokenFile(config: Config): string {
  return dataFiles(resolveDataDir(config.node.data_dir, processPathContext())).localHttpToken;
}

/** How to give a command the API token, for the errors of calls that need it. */
export function tokenHint(config: Config): string {
  return `pass --http-token TOKEN (or PICLUSTER_HTTP_TOKEN, or [http] token in the config); a primary started by \`picluster up\` as this user keeps its token in ${localTokenFile(config)}, which commands read by themselves`;
}

/** The API error with what to do about it, when it is about the token. */
function withHint(config: Config, code: string, message: string): string {
  if (code === "E_UNAUTHORIZED")
    return apiToken(config) === ""
      ? `${message}, and this command has none: ${tokenHint(config)}`
      : `${message}: the token this command sent is not the primary's; ${tokenHint(config)}`;
  if (code === "E_NO_TOKEN_CONFIGURED")
    return `${message}: set it in the primary's config (\`picluster up\` makes one by itself)`;
  return message;
}

function authHeader(config: Config): Record<string, string> {
  const token = apiToken(config);
  return token === "" ? {} : { authorization: `Bearer ${token}` };
}

/** Who runs this command, as the audit log records it next to the token. */
export function whoAmI(): string {
  let user = process.env.USER ?? process.env.LOGNAME ?? "";
  try {
    user ||= userInfo().username;
  } catch {
    // No passwd entry (a container): the host name alone.
  }
  return `${user}@${hostname()}`;
}

/** GET a JSON route; a refused connection or an error body becomes one clear ApiError. */
export function getJson<T>(config: Config, path: string): Promise<T> {
  return callJson<T>(config, "GET", path);
}

/** Call a JSON route with the configured token; errors as for getJson. */
export async function callJson<T>(
  config: Config,
  method: "GET" | "POST" | "DELETE",
  path: string,
  body?: unknown,
): Promise<T> {
  const url = `${apiBase(config)}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        ...authHeader(config),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        "x-picluster-user": whoAmI(),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (err) {
    // fetch hides the reason in `cause` (ECONNREFUSED, ENOTFOUND, "bad port"…).
    const cause = err as {
      cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> };
    };
    const code =
      cause.cause?.code ??
      cause.cause?.errors?.[0]?.code ??
      cause.cause?.message ??
      describeError(err);
    throw new ApiError(
      "E_NO_PRIMARY",
      `cannot reach the primary at ${apiBase(config)} (${code}); is \`picluster primary\` or \`picluster up\` running?`,
    );
  }
  const answer = (await res.json()) as unknown;
  if (!res.ok) {
    const e = (answer as { error?: { code?: string; message?: string } }).error;
    const code = e?.code === undefined ? "E_HTTP" : foreignCode(e.code);
    throw new ApiError(code, withHint(config, code, e?.message ?? `${res.status} from ${path}`));
  }
  return answer as T;
}

/**
 * POST to the running primary with the configured bearer token. Undefined
 * when there is no token to send or no primary answers: the caller then
 * works on the files directly.
 */
export async function postJson<T>(config: Config, path: string): Promise<T | undefined> {
  const auth = authHeader(config);
  if (auth.authorization === undefined) return undefined;
  let res: Response;
  try {
    res = await fetch(`${apiBase(config)}${path}`, {
      method: "POST",
      headers: auth,
    });
  } catch {
    // No primary listening: nothing to coordinate with.
    return undefined;
  }
  const body = (await res.json()) as unknown;
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } }).error;
    const code = e?.code === undefined ? "E_HTTP" : foreignCode(e.code);
    throw new ApiError(code, withHint(config, code, e?.message ?? `${res.status} from ${path}`));
  }
  return body as T;
}

/** GET a route that streams text, handing each piece to `onText` until it ends or `signal` aborts. */
export async function streamText(
  config: Config,
  path: string,
  onText: (text: string) => void,
  signal: AbortSignal,
): Promise<void> {
  let res: Response;
  try {
    res = await fetch(`${apiBase(config)}${path}`, {
      signal,
      headers: authHeader(config),
    });
  } catch (err) {
    if (signal.aborted) return;
    throw new ApiError(
      "E_NO_PRIMARY",
      `cannot reach the primary at ${apiBase(config)} (${describeError(err)})`,
    );
  }
  if (!res.ok) {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    const code = body.error?.code === undefined ? "E_HTTP" : foreignCode(body.error.code);
    throw new ApiError(
      code,
      withHint(config, code, body.error?.message ?? `${res.status} from ${path}`),
    );
  }
  if (res.body === null) return;
  const decoder = new TextDecoder();
  try {
    for await (const chunk of res.body)
      onText(decoder.decode(chunk as Uint8Array, { stream: true }));
  } catch (err) {
    if (!signal.aborted) throw err;
  }
}
