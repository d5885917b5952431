/** The CLI's way to the running primary: its HTTP API, found from the config. */
import type { Config } from "@picluster/common";
import { describeError, PiclusterError } from "@picluster/common";

export class ApiError extends PiclusterError {}

export function apiBase(config: Config): string {
  const host =
    config.http.host === "" || config.http.host === "0.0.0.0" ? "127.0.0.1" : config.http.host;
  return `http://${host.includes(":") ? `[${host}]` : host}:${config.http.port}`;
}

/** GET a JSON route; a refused connection or an error body becomes one clear ApiError. */
export async function getJson<T>(config: Config, path: string): Promise<T> {
  const url = `${apiBase(config)}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      headers: config.http.token ? { authorization: `Bearer ${config.http.token}` } : {},
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
  const body = (await res.json()) as unknown;
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } }).error;
    throw new ApiError(e?.code ?? "E_HTTP", e?.message ?? `${res.status} from ${path}`);
  }
  return body as T;
}

/**
 * POST to the running primary with the configured bearer token. Undefined
 * when there is no token to send or no primary answers: the caller then
 * works on the files directly.
 */
export async function postJson<T>(config: Config, path: string): Promise<T | undefined> {
  if (config.http.token === "") return undefined;
  let res: Response;
  try {
    res = await fetch(`${apiBase(config)}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${config.http.token}` },
    });
  } catch {
    // No primary listening: nothing to coordinate with.
    return undefined;
  }
  const body = (await res.json()) as unknown;
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string } }).error;
    throw new ApiError(e?.code ?? "E_HTTP", e?.message ?? `${res.status} from ${path}`);
  }
  return body as T;
}
