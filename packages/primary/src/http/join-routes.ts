/** The join routes: see registerJoinRoutes. */
import { AuthError, errorMessage } from "@picluster/common";
import type { FastifyInstance, FastifyReply } from "fastify";
import Type from "typebox";
import { type CredentialStore, DEFAULT_TOKEN_TTL_MS } from "../credentials.js";
import { sendError } from "./guard.js";
import { installScript, type JoinSettings, joinCommand, manualJoinCommand } from "./join.js";

/** What the join routes need. */
export interface JoinRoutesDeps {
  /** Who may join; absent when the listener runs without TLS. */
  credentials?: CredentialStore;
  /** What joining nodes download; absent when the agent bundle was not built. */
  join?: { settings: JoinSettings; bundle: Buffer };
  /** Scale-out: the other primaries' agent addresses, named in the join lines after this one. */
  otherPrimaries?: () => string[];
  /** Where nodes reach the agent listener, for the lines a join token is handed out with. */
  agentAddress?: { host: string; port: number };
}

/**
 * Joining: the install script and agent bundle a new node downloads, a
 * join token for a name (token), and revoking a node's credential (token).
 */
export function registerJoinRoutes(app: FastifyInstance, opts: JoinRoutesDeps): void {
  // What joining nodes download: the install script and the agent bundle.
  const joinFiles: Array<
    [string, string, (j: NonNullable<JoinRoutesDeps["join"]>) => string | Buffer]
  > = [
    ["/join.sh", "text/x-shellscript; charset=utf-8", (j) => installScript(settingsNow(j))],
    ["/join/agent.cjs", "text/javascript; charset=utf-8", (j) => j.bundle],
  ];
  for (const [path, type, body] of joinFiles) {
    app.get(path, async (_req, reply) => {
      if (opts.join === undefined) {
        return sendError(reply, "E_NO_BUNDLE", errorMessage("E_NO_BUNDLE"));
      }
      reply.header("content-type", type).header("cache-control", "no-store");
      return body(opts.join);
    });
  }

  /** The join settings with the other primaries as they are now (the script's hash follows). */
  const settingsNow = (j: NonNullable<JoinRoutesDeps["join"]>): JoinSettings => {
    const also = opts.otherPrimaries?.() ?? [];
    return also.length === 0 ? j.settings : { ...j.settings, alsoPrimaries: also };
  };

  const NameParams = Type.Object({ name: Type.String({ minLength: 1, maxLength: 63 }) });
  const authFailure = (err: unknown, reply: FastifyReply) => {
    if (!(err instanceof AuthError)) throw err;
    return sendError(reply, err.code, err.message);
  };

  app.post<{ Params: { name: string }; Querystring: { ttl?: number } }>(
    "/api/nodes/:name/join-token",
    {
      schema: {
        params: NameParams,
        querystring: Type.Object(
          { ttl: Type.Optional(Type.Integer({ minimum: 60_000, maximum: 30 * 86_400_000 })) },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      if (opts.credentials === undefined)
        return sendError(
          reply,
          "E_NO_TLS",
          "this primary runs without TLS: nodes join without tokens",
        );
      try {
        const { name } = req.params;
        const validForMs = req.query.ttl ?? DEFAULT_TOKEN_TTL_MS;
        const token = opts.credentials.addToken(name, validForMs);
        // The lines `picluster node add` prints, for a client (the dashboard) that cannot build them.
        const at = opts.agentAddress;
        return reply.code(201).send({
          name,
          token,
          validForMs,
          command:
            opts.join === undefined ? null : joinCommand(settingsNow(opts.join), token, name),
          manual:
            at === undefined
              ? null
              : manualJoinCommand(at.host, at.port, token, opts.otherPrimaries?.() ?? []),
          // How many primaries the lines name (more than one: the scale-out mode).
          primaries: 1 + (opts.otherPrimaries?.().length ?? 0),
        });
      } catch (err) {
        return authFailure(err, reply);
      }
    },
  );

  app.post<{ Params: { name: string } }>(
    "/api/nodes/:name/revoke",
    { schema: { params: NameParams } },
    async (req, reply) => {
      if (opts.credentials === undefined)
        return sendError(
          reply,
          "E_NO_TLS",
          "this primary runs without TLS: there is nothing to revoke",
        );
      try {
        return { name: req.params.name, revoked: opts.credentials.revoke(req.params.name) };
      } catch (err) {
        return authFailure(err, reply);
      }
    },
  );
}
