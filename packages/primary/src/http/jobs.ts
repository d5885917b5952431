/**
 * Jobs over HTTP: submit (token), list, one job, its items' results, cancel
 * (token). Progress and item events reach clients on /api/stream. Like a
 * task run's, an item's output and error are what a node printed: without
 * the token they are left out.
 */
import type { Selectable, StoredJob, StoredJobItem } from "@picluster/common";
import { errorMessage } from "@picluster/common";
import {
  ErrorBodySchema,
  JobListSchema,
  JobResultsSchema,
  StoredJobSchema,
} from "@picluster/common/schema";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import Type from "typebox";
import { JobRequestError } from "../jobs/items.js";
import type { JobRequest, JobService } from "../jobs/service.js";
import { askedBySelf, mayOperate, refuseOutOfScope, requesterOf as requester } from "./access.js";
import { sendError } from "./guard.js";

/** A list of a hundred thousand small items is a few MB; larger jobs are ranges. */
export const JOB_BODY_LIMIT = 16 * 1024 * 1024;

const Json = Type.Unknown();
const JobBody = Type.Object(
  {
    task: Type.String({ minLength: 1, maxLength: 64 }),
    on: Type.String({ minLength: 1, maxLength: 4096 }),
    items: Type.Union([
      Type.Object(
        { kind: Type.Literal("range"), from: Type.Integer(), to: Type.Integer() },
        { additionalProperties: false },
      ),
      Type.Object(
        { kind: Type.Literal("list"), values: Type.Array(Json, { minItems: 1 }) },
        { additionalProperties: false },
      ),
    ]),
    args: Type.Optional(
      Type.Record(Type.String({ maxLength: 32 }), Type.String({ maxLength: 4096 })),
    ),
    perNode: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
    retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 100 })),
    retryFailed: Type.Optional(Type.Boolean()),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1_000, maximum: 7 * 86_400_000 })),
  },
  { additionalProperties: false },
);
type JobBodyT = Omit<JobRequest, "requestedBy">;

/** The request field a refusal is about (the selector when not listed; none for an option). */
const FIELD_OF: Readonly<Record<string, string | undefined>> = {
  E_BAD_ITEMS: "items",
  E_BAD_TASK: "task",
  E_TASK_NOT_ALLOWED: "task",
  E_BAD_OPTION: undefined,
};

const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
const ITEM_STATES = ["queued", "running", "cancelling", "ok", "failed", "cancelled"] as const;

/** An item as whoever can reach the API sees it: where and how it ended, not what it printed. */
function publicItem(item: StoredJobItem): StoredJobItem {
  const { error: _error, ...rest } = item;
  return { ...rest, output: "", truncated: false };
}

export function registerJobRoutes(
  app: FastifyInstance,
  deps: {
    jobs: () => JobService;
    /** The nodes a selector picks; undefined when it does not parse (the service says why). */
    nodesFor: (on: string) => Array<Selectable & { name: string }> | undefined;
  },
): void {
  /** A scoped token sees (and stops) the jobs it started; others' are as if absent. */
  const visible = (req: FastifyRequest, job: StoredJob | undefined) =>
    job !== undefined && (req.principal?.scope === undefined || askedBySelf(req, job.requestedBy))
      ? job
      : undefined;
  const failure = (err: unknown, reply: FastifyReply) => {
    if (!(err instanceof JobRequestError)) throw err;
    const field = Object.hasOwn(FIELD_OF, err.code) ? FIELD_OF[err.code] : "on";
    return sendError(reply, err.code, err.message, field);
  };
  const notFound = (reply: FastifyReply, id: number) =>
    sendError(reply, "E_NOT_FOUND", errorMessage("E_NOT_FOUND", `job ${id}`), "id");

  app.post<{ Body: JobBodyT }>(
    "/api/jobs",
    {
      schema: { body: JobBody, response: { 202: StoredJobSchema, "4xx": ErrorBodySchema } },
      bodyLimit: JOB_BODY_LIMIT,
    },
    async (req, reply) => {
      try {
        const refused = refuseOutOfScope(req, reply, deps.nodesFor(req.body.on) ?? []);
        if (refused !== undefined) return refused;
        const scope = req.principal?.scopeText;
        const job = await deps.jobs().submit({
          ...req.body,
          requestedBy: requester(req),
          // Nodes that join the selection later are held to the token's scope too.
          ...(scope === undefined ? {} : { scope }),
        });
        return reply.code(202).send(job);
      } catch (err) {
        return failure(err, reply);
      }
    },
  );

  app.get<{ Querystring: { limit?: number } }>(
    "/api/jobs",
    {
      schema: {
        querystring: Type.Object(
          { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000 })) },
          { additionalProperties: false },
        ),
        response: { 200: JobListSchema, "4xx": ErrorBodySchema },
      },
    },
    async (req): Promise<{ jobs: StoredJob[] }> => ({
      jobs: (await deps.jobs().list(req.query.limit ?? 50)).filter(
        (j) => visible(req, j) !== undefined,
      ),
    }),
  );

  app.get<{ Params: { id: number } }>(
    "/api/jobs/:id",
    { schema: { params: IdParams, response: { 200: StoredJobSchema, "4xx": ErrorBodySchema } } },
    async (req, reply) =>
      visible(req, await deps.jobs().get(req.params.id)) ?? notFound(reply, req.params.id),
  );

  app.get<{
    Params: { id: number };
    Querystring: { after?: number; state?: (typeof ITEM_STATES)[number]; limit?: number };
  }>(
    "/api/jobs/:id/results",
    {
      schema: {
        params: IdParams,
        querystring: Type.Object(
          {
            /** Items with an index greater than this: page with the last index seen. */
            after: Type.Optional(Type.Integer({ minimum: -1 })),
            state: Type.Optional(Type.Union(ITEM_STATES.map((s) => Type.Literal(s)))),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: JobResultsSchema, "4xx": ErrorBodySchema },
      },
    },
    async (req, reply) => {
      const jobs = deps.jobs();
      if (visible(req, await jobs.get(req.params.id)) === undefined)
        return notFound(reply, req.params.id);
      const items = await jobs.items(req.params.id, {
        ...(req.query.after === undefined ? {} : { after: req.query.after }),
        ...(req.query.state === undefined ? {} : { state: req.query.state }),
        limit: req.query.limit ?? 1_000,
      });
      return { items: mayOperate(req) ? items : items.map(publicItem), redacted: !mayOperate(req) };
    },
  );

  app.delete<{ Params: { id: number } }>(
    "/api/jobs/:id",
    {
      schema: { params: IdParams, response: { 200: StoredJobSchema, "4xx": ErrorBodySchema } },
    },
    async (req, reply) => {
      if (visible(req, await deps.jobs().get(req.params.id)) === undefined)
        return notFound(reply, req.params.id);
      const job = await deps.jobs().cancel(req.params.id, requester(req));
      if (job === undefined) return notFound(reply, req.params.id);
      if (job.status === "ok" || job.status === "failed" || job.status === "cancelled")
        return sendError(
          reply,
          "E_FINISHED",
          `job ${job.id} has already ended (${job.status})`,
          "id",
        );
      return job;
    },
  );
}
