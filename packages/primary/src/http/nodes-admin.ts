/**
 * Node administration routes: DELETE /api/nodes/:name (token) removes a
 * node: revoked, cut, its record (and unless `keepHistory=true` its
 * samples and events) deleted, what fires for it resolved without a
 * message. The removal goes out on /api/stream as a `node.removed` event.
 */
import { NodeError } from "@picluster/common";
import { ErrorBodySchema, RemovedNodeSchema } from "@picluster/common/schema";
import type { FastifyInstance } from "fastify";
import Type from "typebox";
import type { RemovedNode, RemoveRequest } from "../removal.js";
import { requesterOf as requester } from "./access.js";
import { sendError } from "./guard.js";

/** What the routes need of the primary. */
export interface NodeAdmin {
  remove(req: RemoveRequest): RemovedNode;
}

export function registerNodeAdminRoutes(app: FastifyInstance, deps: { nodes: NodeAdmin }): void {
  const { nodes } = deps;
  app.delete<{ Params: { name: string }; Querystring: { keepHistory?: boolean } }>(
    "/api/nodes/:name",
    {
      schema: {
        // A name (what people type) or an id (when several nodes share a name).
        params: Type.Object({ name: Type.String({ minLength: 1, maxLength: 128 }) }),
        querystring: Type.Object(
          { keepHistory: Type.Optional(Type.Boolean()) },
          { additionalProperties: false },
        ),
        response: { 200: RemovedNodeSchema, "4xx": ErrorBodySchema },
      },
    },
    async (req, reply) => {
      try {
        return nodes.remove({
          node: req.params.name,
          keepHistory: req.query.keepHistory ?? false,
          requestedBy: requester(req),
        });
      } catch (err) {
        if (!(err instanceof NodeError)) throw err;
        return sendError(reply, err.code, err.message, "name");
      }
    },
  );
}
