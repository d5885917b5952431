import type { AlertsAnswer, TestResult } from "@picluster/common";
/**
 * Alert routes: GET /api/alerts (the rules in force and what is pending or
 * firing) and POST /api/alerts/test (token) sending a test message through
 * one channel, answering whether it was delivered. Firing and resolved
 * alerts go out on /api/stream as stored events.
 */
import { type AlertRuleDef, describeRule } from "@picluster/common";
import { AlertsAnswerSchema, ChannelTestSchema, ErrorBodySchema } from "@picluster/common/schema";
import type { FastifyInstance } from "fastify";
import Type from "typebox";
import type { AlertState } from "../alerts/engine.js";
import { sendError } from "./guard.js";

export type { TestResult } from "@picluster/common";

/** What the routes need of the primary's alerting. */
export interface AlertsView {
  enabled: boolean;
  rules(): readonly AlertRuleDef[];
  states(): AlertState[];
  channels(): Array<{ name: string; type: string }>;
  /** Undefined when there is no such channel. */
  test(channel: string): Promise<TestResult> | undefined;
}

export function registerAlertRoutes(app: FastifyInstance, deps: { alerts: AlertsView }): void {
  const { alerts } = deps;
  app.get(
    "/api/alerts",
    { schema: { response: { 200: AlertsAnswerSchema } } },
    async (): Promise<AlertsAnswer> => {
      const states = alerts.states();
      return {
        enabled: alerts.enabled,
        rules: alerts.rules().map((r) => ({
          name: r.name,
          when: `${r.metric} ${r.op} ${r.threshold}`,
          forMs: r.forMs,
          on: r.on,
          channels: r.channels,
          severity: r.severity,
          repeatMs: r.repeatMs,
          enabled: r.enabled,
          stock: r.stock,
          summary: describeRule(r),
          firing: states.filter((s) => s.rule === r.name && s.state === "firing").length,
        })),
        states,
        channels: alerts.channels(),
      };
    },
  );

  app.post<{ Body: { channel: string } }>(
    "/api/alerts/test",
    {
      schema: {
        body: Type.Object(
          { channel: Type.String({ minLength: 1, maxLength: 64 }) },
          { additionalProperties: false },
        ),
        response: { 200: ChannelTestSchema, "4xx": ErrorBodySchema },
      },
    },
    async (req, reply) => {
      const result = alerts.test(req.body.channel);
      if (result === undefined) {
        const known = alerts.channels().map((c) => c.name);
        return sendError(
          reply,
          "E_NO_SUCH_CHANNEL",
          `no channel "${req.body.channel}" (${known.length === 0 ? "none is configured: add a [channel.NAME] section" : `configured: ${known.join(", ")}`})`,
          "channel",
        );
      }
      return { channel: req.body.channel, ...(await result) };
    },
  );
}
