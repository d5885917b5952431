/** Named API tokens over the API (admin only): list, make, revoke. The CLI's `token` commands use them. */
import { ErrorBodySchema } from "@picluster/common/schema";
import type { FastifyInstance } from "fastify";
import Type from "typebox";
import { ApiTokenError, type ApiTokens } from "../api-tokens.js";
import { requesterOf } from "./access.js";
import { sendError } from "./guard.js";

const TokenBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 64 }),
    role: Type.String({ minLength: 1, maxLength: 16 }),
    on: Type.Optional(Type.String({ minLength: 1, maxLength: 512 })),
    /** Milliseconds from now; absent: it does not expire. */
    expiresInMs: Type.Optional(Type.Integer({ minimum: 60_000, maximum: 5 * 365 * 86_400_000 })),
  },
  { additionalProperties: false },
);

const FIELD: Record<string, string> = {
  E_BAD_TOKEN_NAME: "name",
  E_TOKEN_EXISTS: "name",
  E_BAD_ROLE: "role",
  E_BAD_SELECTOR: "on",
  E_NOT_FOUND: "name",
};

export function registerTokenRoutes(
  app: FastifyInstance,
  tokens: ApiTokens,
  audit: (record: Record<string, unknown>) => void = () => {},
): void {
  app.get("/api/tokens", async () => ({ tokens: tokens.list() }));

  app.post<{ Body: { name: string; role: string; on?: string; expiresInMs?: number } }>(
    "/api/tokens",
    { schema: { body: TokenBody, response: { "4xx": ErrorBodySchema } } },
    async (req, reply) => {
      try {
        const made = tokens.add({
          name: req.body.name,
          role: req.body.role,
          ...(req.body.on === undefined ? {} : { scope: req.body.on }),
          ...(req.body.expiresInMs === undefined ? {} : { expiresInMs: req.body.expiresInMs }),
          createdBy: requesterOf(req),
        });
        // Never the secret: the name, role and scope say which token it is.
        audit({
          event: "token.added",
          token: made.name,
          role: made.role,
          scope: made.scope,
          expiresAt: made.expiresAt,
          by: requesterOf(req),
        });
        return reply.code(201).send(made);
      } catch (err) {
        if (!(err instanceof ApiTokenError)) throw err;
        return sendError(reply, err.code, err.message, FIELD[err.code]);
      }
    },
  );

  app.delete<{ Params: { name: string } }>(
    "/api/tokens/:name",
    { schema: { params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) }) } },
    async (req, reply) => {
      try {
        const revoked = tokens.revoke(req.params.name);
        audit({ event: "token.revoked", token: revoked.name, by: requesterOf(req) });
        return revoked;
      } catch (err) {
        if (!(err instanceof ApiTokenError)) throw err;
        return sendError(reply, err.code, err.message, "name");
      }
    },
  );
}
