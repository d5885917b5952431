/**
 * Task routes: POST /api/tasks (token) starts a run, GET /api/tasks and
 * /api/tasks/:id read them, DELETE /api/tasks/:id (token) cancels one, and
 * GET /api/ping pings a selection. Progress and output go out on
 * /api/stream (task.started, task.node, task.output, task.finished).
 */
import {
  type Clock,
  errorMessage,
  httpStatus,
  type Logger,
  type Selectable,
} from "@picluster/common";
import { ErrorBodySchema, StoredTaskRunSchema, TaskRunListSchema } from "@picluster/common/schema";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import Type from "typebox";
import type { EventBus } from "../events.js";
import { RequestError } from "../session.js";
import type { StoredTaskRun } from "../store/store.js";
import { TaskRequestError, type TaskService } from "../tasks/service.js";
import {
  askedBySelf,
  inScope,
  mayOperate,
  outOfScope,
  refuseOutOfScope,
  requesterOf as requester,
} from "./access.js";
import { type ErrorBody, sendError } from "./guard.js";
import { openSse, type StreamSlots } from "./stream.js";

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

/**
 * A run as whoever can reach the API sees it: what ran where and how it
 * ended, without its arguments, output or errors (those can hold secrets
 * and whatever a node printed; they need the token).
 */
export function publicRun(run: StoredTaskRun): StoredTaskRun & { redacted: true } {
  return {
    ...run,
    args: {},
    nodes: run.nodes.map(({ error: _error, ...n }) => ({ ...n, output: "", truncated: false })),
    redacted: true,
  };
}

export function registerTaskRoutes(
  app: FastifyInstance,
  deps: {
    tasks: TaskService;
    errorBody: ErrorBody;
    events: EventBus;
    slots: StreamSlots;
    clock: Clock;
    log: Logger;
    /** A node's id from its id or name. */
    findNode: (idOrName: string) => string | undefined;
    /** A node by id or name (a scoped token's checks read its labels). */
    nodeOf: (idOrName: string) => (Selectable & { id: string; name: string }) | undefined;
    /** The nodes a selector picks; undefined when it does not parse (the service says why). */
    nodesFor: (on: string) => Array<Selectable & { id: string; name: string }> | undefined;
  },
): void {
  const { tasks, errorBody, findNode } = deps;
  /** A run as a scoped token sees it: its nodes' results only; undefined when it has none of them. */
  const scopedRun = (req: FastifyRequest, run: StoredTaskRun): StoredTaskRun | undefined => {
    if (req.principal?.scope === undefined) return run;
    const nodes = run.nodes.filter((n) => {
      const node = deps.nodeOf(n.nodeId);
      return node !== undefined && inScope(req, node);
    });
    return nodes.length === 0 ? undefined : { ...run, nodes };
  };
  /** A node-level request (processes, logs) on a node outside the token's scope: refused. */
  const nodeOutOfScope = (req: FastifyRequest, reply: FastifyReply, idOrName: string) => {
    const node = deps.nodeOf(idOrName);
    return node === undefined ? undefined : refuseOutOfScope(req, reply, [node]);
  };
  const failure = (err: unknown, reply: FastifyReply) => {
    if (!(err instanceof TaskRequestError)) throw err;
    return sendError(
      reply,
      err.code,
      err.message,
      err.code === "E_BAD_TASK" || err.code === "E_TASK_NOT_ALLOWED" ? "task" : "on",
    );
  };

  app.post<{ Body: TaskBodyT }>(
    "/api/tasks",
    // A task request is a few hundred bytes; 16 KiB leaves room for long arguments.
    {
      schema: { body: TaskBody, response: { 202: StoredTaskRunSchema, "4xx": ErrorBodySchema } },
      bodyLimit: 16 * 1024,
    },
    async (req, reply) => {
      try {
        const { args, ...rest } = req.body;
        const refused = refuseOutOfScope(req, reply, deps.nodesFor(req.body.on) ?? []);
        if (refused !== undefined) return refused;
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
        response: { 200: TaskRunListSchema, "4xx": ErrorBodySchema },
      },
    },
    async (req, reply) => {
      const { node, limit = 50 } = req.query;
      const shown = mayOperate(req) ? (r: StoredTaskRun) => r : publicRun;
      const visible = (runs: StoredTaskRun[]) =>
        runs.flatMap((r) => {
          const v = scopedRun(req, r);
          return v === undefined ? [] : [shown(v)];
        });
      if (node === undefined) return { runs: visible(tasks.list(limit)) };
      const id = findNode(node);
      const found = id === undefined ? undefined : deps.nodeOf(id);
      if (id === undefined || found === undefined || !inScope(req, found))
        return sendError(reply, "E_NO_SUCH_NODE", errorMessage("E_NO_SUCH_NODE", node), "node");
      return { runs: visible(tasks.list(limit, id)) };
    },
  );

  app.get("/api/tasks/catalog", async () => ({ tasks: tasks.catalog() }));

  // A run's arguments and each node's output: for the token's holder only.
  app.get<{ Params: { id: number } }>(
    "/api/tasks/:id",
    {
      schema: { params: RunParams, response: { 200: StoredTaskRunSchema, "4xx": ErrorBodySchema } },
    },
    async (req, reply) => {
      const found = tasks.get(req.params.id);
      const run = found === undefined ? undefined : scopedRun(req, found);
      return run ?? sendError(reply, "E_NOT_FOUND", `no task run ${req.params.id}`);
    },
  );

  /**
   * A run's output live, as server-sent events: `task.output` for each
   * piece, `task.node` as each node ends, `end` when the run is over (at
   * once for a run that already ended: its output is in GET /api/tasks/:id).
   */
  app.get<{ Params: { id: number } }>(
    "/api/tasks/:id/output",
    { schema: { params: RunParams } },
    async (req, reply) => {
      const found = tasks.get(req.params.id);
      const run = found === undefined ? undefined : scopedRun(req, found);
      if (run === undefined) return sendError(reply, "E_NOT_FOUND", `no task run ${req.params.id}`);
      const shownNodes = new Set(run.nodes.map((n) => n.nodeId));
      const sse = openSse(req, reply, deps);
      if (sse === undefined) return;
      const id = run.id;
      const send = (kind: string, data: unknown) =>
        sse.write(`event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`);
      if (run.status !== "running") {
        send("end", { runId: id, status: run.status });
        sse.end();
        return;
      }
      const off = deps.events.on((e) => {
        if (e.kind === "task.output" && e.runId === id) {
          if (shownNodes.has(e.nodeId)) send("task.output", e);
        } else if (e.kind === "task.node" && e.runId === id) {
          if (shownNodes.has(e.nodeId)) send("task.node", e);
        } else if (e.kind === "task.finished" && e.runId === id) {
          send("end", { runId: id, status: e.status });
          sse.end();
        }
      });
      const stopKeepalive = deps.clock.every(15_000, () => sse.write(": keep-alive\n\n"));
      sse.onClose(() => {
        off();
        stopKeepalive();
      });
    },
  );

  app.delete<{ Params: { id: number } }>(
    "/api/tasks/:id",
    {
      schema: { params: RunParams, response: { 200: StoredTaskRunSchema, "4xx": ErrorBodySchema } },
    },
    async (req, reply) => {
      const found = tasks.get(req.params.id);
      const run = found === undefined ? undefined : scopedRun(req, found);
      if (run === undefined) return sendError(reply, "E_NOT_FOUND", `no task run ${req.params.id}`);
      // A scoped operator stops what it started, not a run others asked for on its nodes too.
      if (req.principal?.scope !== undefined && !askedBySelf(req, run.requestedBy))
        return outOfScope(reply, req, `task run ${run.id} was started by ${run.requestedBy}`);
      if (run.status !== "running")
        return sendError(
          reply,
          "E_FINISHED",
          `task run ${run.id} has already ended (${run.status})`,
        );
      return tasks.cancel(req.params.id, requester(req));
    },
  );

  const NodeParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
  const nodeFailure = (err: unknown, reply: FastifyReply, node: string) => {
    if (err instanceof TaskRequestError) return sendError(reply, err.code, err.message);
    // A node's answer: 502 it refused or failed, 501 its agent does not do this.
    if (err instanceof RequestError)
      return sendError(reply, err.code, `node "${node}" answered: ${err.message}`);
    throw err;
  };

  app.get<{ Params: { id: string }; Querystring: { n?: number; sampleMs?: number } }>(
    "/api/nodes/:id/processes",
    {
      // A node's command lines and logs are not for whoever can reach the API.
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
      const refused = nodeOutOfScope(req, reply, req.params.id);
      if (refused !== undefined) return refused;
      try {
        return await tasks.ask(req.params.id, "processes.top", {
          n: req.query.n ?? 10,
          ...(req.query.sampleMs === undefined ? {} : { sampleMs: req.query.sampleMs }),
        });
      } catch (err) {
        return nodeFailure(err, reply, req.params.id);
      }
    },
  );

  app.get<{ Params: { id: string }; Querystring: { lines?: number; follow?: boolean } }>(
    "/api/nodes/:id/logs",
    {
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
      const refused = nodeOutOfScope(req, reply, req.params.id);
      if (refused !== undefined) return refused;
      const lines = req.query.lines ?? 100;
      if (req.query.follow !== true) {
        try {
          return await tasks.ask(req.params.id, "logs.tail", { lines });
        } catch (err) {
          return nodeFailure(err, reply, req.params.id);
        }
      }
      // Follow: plain text, lines as the node writes them, until the client
      // goes. It holds a stream slot like any other long-lived answer.
      const slot = deps.slots.take(req.ip);
      if (typeof slot !== "function")
        return (
          reply
            .code(slot.status)
            .header("retry-after", "10")
            // Closed, not kept alive: a refused client must not hold a connection slot.
            .header("connection", "close")
            .send(errorBody("E_TOO_MANY_STREAMS", slot.message))
        );
      req.raw.socket.setTimeout(0);
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
      reply.raw.on("close", () => {
        slot();
        stop.abort();
      });
      const err = await done;
      if (!started) {
        // Nothing streamed: answer like the plain route would.
        if (err instanceof TaskRequestError || err instanceof RequestError) {
          reply.raw.writeHead(httpStatus(err.code), {
            "content-type": "application/json; charset=utf-8",
          });
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
        const results = await tasks.ping(req.query.on ?? "all", req.query.timeout);
        // A scoped token hears its own nodes only.
        return {
          results: results.filter((r) => {
            const node = deps.nodeOf(r.nodeId);
            return node !== undefined && inScope(req, node);
          }),
        };
      } catch (err) {
        return failure(err, reply);
      }
    },
  );
}
