/**
 * Task routes: POST /api/tasks (token) starts a run, GET /api/tasks and
 * /api/tasks/:id read them, DELETE /api/tasks/:id (token) cancels one, and
 * GET /api/ping pings a selection. Progress and output go out on
 * /api/stream (task.started, task.node, task.output, task.finished).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import Type from "typebox";
import { RequestError } from "../session.js";
import { TaskRequestError, type TaskService } from "../tasks/service.js";

type Guard = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
type ErrorBody = (code: string, message: string, field?: string) => unknown;

const TaskBody = Type.Object(
  {
    task: Type.String({ minLength: 1, maxLength: 64 }),
    on: Type.String({ minLength: 1, maxLength: 4096 }),
    args: Type.Optional(
      Type.Record(Type.String({ maxLength: 32 }), Type.String({ maxLength: 4096 })),
    ),
    batch: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    waitAlive: Type.Optional(Type.Boolean()),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1_000, maximum: 7 * 86_400_000 })),
  },
  { additionalProperties: false },
);
type TaskBodyT = {
  task: string;
  on: string;
  args?: Record<string, string>;
  batch?: number;
  waitAlive?: boolean;
  concurrency?: number;
  timeoutMs?: number;
};
/** A followed log stays open at most this long. */
const FOLLOW_MAX_MS = 24 * 3_600_000;
const RunParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

/** Who asked: the API token, and the user the client says it runs as (not verified). */
export function requester(req: FastifyRequest): string {
  const claimed = req.headers["x-picluster-user"];
  const who = typeof claimed === "string" ? claimed.replace(/[^\w.@-]/g, "").slice(0, 64) : "";
  return who === "" ? "api-token" : `api-token (${who})`;
}

export function registerTaskRoutes(
  app: FastifyInstance,
  deps: {
    tasks: TaskService;
    requireToken: Guard;
    errorBody: ErrorBody;
    /** A node's id from its id or name. */
    findNode: (idOrName: string) => string | undefined;
  },
): void {
  const { tasks, requireToken, errorBody, findNode } = deps;
  const failure = (err: unknown, reply: FastifyReply) => {
    if (!(err instanceof TaskRequestError)) throw err;
    const status = err.code === "E_NO_SUCH_NODE" ? 404 : 400;
    return reply
      .code(status)
      .send(errorBody(err.code, err.message, err.code === "E_BAD_TASK" ? "task" : "on"));
  };

  app.post<{ Body: TaskBodyT }>(
    "/api/tasks",
    { schema: { body: TaskBody }, preHandler: requireToken },
    async (req, reply) => {
      try {
        const { args, ...rest } = req.body;
        const run = tasks.start({ ...rest, args: args ?? {}, requestedBy: requester(req) });
        return reply.code(202).send(run);
      } catch (err) {
        return failure(err, reply);
      }
    },
  );

  app.get<{ Querystring: { limit?: number; node?: string } }>(
    "/api/tasks",
    {
      schema: {
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000 })),
            node: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const { node, limit = 50 } = req.query;
      if (node === undefined) return { runs: tasks.list(limit) };
      const id = findNode(node);
      if (id === undefined)
        return reply.code(404).send(errorBody("E_NOT_FOUND", `no node "${node}"`, "node"));
      return { runs: tasks.list(limit, id) };
    },
  );

  app.get("/api/tasks/catalog", async () => ({ tasks: tasks.catalog() }));

  app.get<{ Params: { id: number } }>(
    "/api/tasks/:id",
    { schema: { params: RunParams } },
    async (req, reply) => {
      const run = tasks.get(req.params.id);
      return run ?? reply.code(404).send(errorBody("E_NOT_FOUND", `no task run ${req.params.id}`));
    },
  );

  app.delete<{ Params: { id: number } }>(
    "/api/tasks/:id",
    { schema: { params: RunParams }, preHandler: requireToken },
    async (req, reply) => {
      const run = tasks.get(req.params.id);
      if (run === undefined)
        return reply.code(404).send(errorBody("E_NOT_FOUND", `no task run ${req.params.id}`));
      if (run.status !== "running")
        return reply
          .code(409)
          .send(errorBody("E_FINISHED", `task run ${run.id} has already ended (${run.status})`));
      return tasks.cancel(req.params.id, requester(req));
    },
  );

  const NodeParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
  const nodeFailure = (err: unknown, reply: FastifyReply) => {
    if (err instanceof TaskRequestError)
      return reply
        .code(err.code === "E_NO_SUCH_NODE" ? 404 : 409)
        .send(errorBody(err.code, err.message));
    if (err instanceof RequestError)
      return reply.code(502).send(errorBody(err.code, `the node answered: ${err.message}`));
    throw err;
  };

  app.get<{ Params: { id: string }; Querystring: { n?: number; sampleMs?: number } }>(
    "/api/nodes/:id/processes",
    {
      // A node's command lines and logs are not for whoever can reach the API.
      preHandler: requireToken,
      schema: {
        params: NodeParams,
        querystring: Type.Object(
          {
            n: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
            sampleMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 5_000 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      try {
        return await tasks.ask(req.params.id, "processes.top", {
          n: req.query.n ?? 10,
          ...(req.query.sampleMs === undefined ? {} : { sampleMs: req.query.sampleMs }),
        });
      } catch (err) {
        return nodeFailure(err, reply);
      }
    },
  );

  app.get<{ Params: { id: string }; Querystring: { lines?: number; follow?: boolean } }>(
    "/api/nodes/:id/logs",
    {
      preHandler: requireToken,
      schema: {
        params: NodeParams,
        querystring: Type.Object(
          {
            lines: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
            follow: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      const lines = req.query.lines ?? 100;
      if (req.query.follow !== true) {
        try {
          return await tasks.ask(req.params.id, "logs.tail", { lines });
        } catch (err) {
          return nodeFailure(err, reply);
        }
      }
      // Follow: plain text, lines as the node writes them, until the client goes.
      const stop = new AbortController();
      let started = false;
      const done = tasks
        .ask(req.params.id, "logs.tail", { lines, follow: true }, FOLLOW_MAX_MS, {
          signal: stop.signal,
          onOutput: (out) => {
            if (!started) {
              started = true;
              reply.raw.writeHead(200, {
                "content-type": "text/plain; charset=utf-8",
                "cache-control": "no-cache",
                "x-accel-buffering": "no",
              });
            }
            reply.raw.write(out.data);
          },
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      reply.hijack();
      reply.raw.on("close", () => stop.abort());
      const err = await done;
      if (!started) {
        // Nothing streamed: answer like the plain route would.
        if (err instanceof TaskRequestError || err instanceof RequestError) {
          const status =
            err instanceof TaskRequestError ? (err.code === "E_NO_SUCH_NODE" ? 404 : 409) : 502;
          reply.raw.writeHead(status, { "content-type": "application/json; charset=utf-8" });
          reply.raw.end(JSON.stringify(errorBody(err.code, err.message)));
          return;
        }
        reply.raw.writeHead(200, { "content-type": "text/plain; charset=utf-8" });
      }
      reply.raw.end();
    },
  );

  app.get<{ Querystring: { on?: string; timeout?: number } }>(
    "/api/ping",
    {
      schema: {
        querystring: Type.Object(
          {
            on: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
            timeout: Type.Optional(Type.Integer({ minimum: 10, maximum: 60_000 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => {
      try {
        return { results: await tasks.ping(req.query.on ?? "all", req.query.timeout) };
      } catch (err) {
        return failure(err, reply);
      }
    },
  );
}
