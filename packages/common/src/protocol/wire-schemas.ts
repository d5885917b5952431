// Generated from messages.ts by `npm run gen:wire`; do not edit by hand.
// Plain JSON Schema of every message type, checked by json-check.ts.
import type { WireSpec } from "./json-check.js";
import type { MessageType } from "./messages.js";

export const WIRE_SCHEMAS: Record<MessageType, WireSpec> = {
  hello: {
    from: "agent",
    payload: {
      type: "object",
      required: ["nodeId", "name", "version", "protocols", "labels"],
      properties: {
        nodeId: {
          type: "string",
          minLength: 1,
          maxLength: 128,
        },
        name: {
          type: "string",
          minLength: 1,
          maxLength: 253,
        },
        version: {
          type: "string",
          maxLength: 64,
        },
        protocols: {
          type: "array",
          items: {
            type: "integer",
            minimum: 1,
          },
          minItems: 1,
          maxItems: 16,
        },
        labels: {
          type: "object",
          patternProperties: {
            "^[A-Za-z_][A-Za-z0-9_.-]{0,62}$": {
              type: "string",
              maxLength: 256,
            },
          },
          additionalProperties: false,
        },
        joinToken: {
          type: "string",
          maxLength: 256,
        },
      },
    },
  },
  welcome: {
    from: "primary",
    payload: {
      type: "object",
      required: ["protocol", "heartbeatMs", "vitalsMs", "lastSeq", "primaryVersion"],
      properties: {
        protocol: {
          type: "integer",
          minimum: 1,
        },
        heartbeatMs: {
          type: "integer",
          minimum: 1,
        },
        vitalsMs: {
          type: "integer",
          minimum: 1,
        },
        lastSeq: {
          type: "integer",
          minimum: 0,
        },
        primaryVersion: {
          type: "string",
          maxLength: 64,
        },
      },
    },
  },
  details: {
    from: "agent",
    payload: {
      type: "object",
      required: [
        "hostname",
        "os",
        "kernel",
        "arch",
        "cpu",
        "memory",
        "disks",
        "interfaces",
        "agentVersion",
        "nodeVersion",
      ],
      properties: {
        hostname: {
          type: "string",
          maxLength: 253,
        },
        os: {
          type: "object",
          required: ["name", "version"],
          properties: {
            name: {
              type: "string",
              maxLength: 128,
            },
            version: {
              type: "string",
              maxLength: 128,
            },
          },
        },
        kernel: {
          type: "string",
          maxLength: 128,
        },
        arch: {
          type: "string",
          maxLength: 32,
        },
        cpu: {
          type: "object",
          required: ["model", "cores"],
          properties: {
            model: {
              type: "string",
              maxLength: 256,
            },
            cores: {
              type: "integer",
              minimum: 1,
            },
            minMhz: {
              type: "number",
            },
            maxMhz: {
              type: "number",
            },
          },
        },
        memory: {
          type: "object",
          required: ["totalBytes", "swapBytes"],
          properties: {
            totalBytes: {
              type: "integer",
              minimum: 0,
            },
            swapBytes: {
              type: "integer",
              minimum: 0,
            },
          },
        },
        disks: {
          type: "array",
          items: {
            type: "object",
            required: ["mount", "fs", "sizeBytes"],
            properties: {
              mount: {
                type: "string",
                maxLength: 1024,
              },
              fs: {
                type: "string",
                maxLength: 64,
              },
              sizeBytes: {
                type: "integer",
                minimum: 0,
              },
            },
          },
          maxItems: 256,
        },
        interfaces: {
          type: "array",
          items: {
            type: "object",
            required: ["name", "mac", "addresses"],
            properties: {
              name: {
                type: "string",
                maxLength: 64,
              },
              mac: {
                type: "string",
                maxLength: 64,
              },
              addresses: {
                type: "array",
                items: {
                  type: "string",
                  maxLength: 64,
                },
                maxItems: 64,
              },
            },
          },
          maxItems: 256,
        },
        bootTime: {
          type: "integer",
          minimum: 0,
        },
        agentVersion: {
          type: "string",
          maxLength: 64,
        },
        nodeVersion: {
          type: "string",
          maxLength: 64,
        },
        board: {
          type: "object",
          required: ["model", "serial", "revision"],
          properties: {
            model: {
              type: "string",
              maxLength: 256,
            },
            serial: {
              type: "string",
              maxLength: 64,
            },
            revision: {
              type: "string",
              maxLength: 64,
            },
          },
        },
        tasks: {
          type: "array",
          items: {
            type: "object",
            required: ["name", "description", "builtin", "disruptive", "args"],
            properties: {
              name: {
                type: "string",
                minLength: 1,
                maxLength: 64,
              },
              description: {
                type: "string",
                maxLength: 256,
              },
              builtin: {
                type: "boolean",
              },
              disruptive: {
                type: "boolean",
              },
              timeoutMs: {
                type: "integer",
                minimum: 0,
              },
              args: {
                type: "array",
                items: {
                  type: "object",
                  required: ["name", "type"],
                  properties: {
                    name: {
                      type: "string",
                      maxLength: 32,
                    },
                    type: {
                      anyOf: [
                        {
                          type: "string",
                          const: "string",
                        },
                        {
                          type: "string",
                          const: "integer",
                        },
                        {
                          type: "string",
                          const: "number",
                        },
                        {
                          type: "string",
                          const: "boolean",
                        },
                      ],
                    },
                    pattern: {
                      type: "string",
                      maxLength: 256,
                    },
                  },
                },
                maxItems: 32,
              },
            },
          },
          maxItems: 256,
        },
        updates: {
          type: "object",
          required: ["available", "checkedAt"],
          properties: {
            available: {
              type: "integer",
              minimum: 0,
            },
            checkedAt: {
              type: "integer",
              minimum: 0,
            },
          },
        },
        maxRunning: {
          type: "integer",
          minimum: 1,
          maximum: 64,
        },
      },
    },
  },
  heartbeat: {
    from: "agent",
    payload: {
      type: "object",
      required: ["dropped"],
      properties: {
        dropped: {
          type: "integer",
          minimum: 0,
        },
      },
    },
  },
  vitals: {
    from: "agent",
    payload: {
      type: "object",
      required: ["cpu", "temps", "memory", "swap", "disks", "net"],
      properties: {
        cpu: {
          type: "object",
          required: ["total", "perCore"],
          properties: {
            total: {
              type: "number",
              minimum: 0,
              maximum: 100,
            },
            perCore: {
              type: "array",
              items: {
                type: "number",
                minimum: 0,
                maximum: 100,
              },
              maxItems: 1024,
            },
          },
        },
        load: {
          type: "array",
          additionalItems: false,
          items: [
            {
              type: "number",
            },
            {
              type: "number",
            },
            {
              type: "number",
            },
          ],
          minItems: 3,
        },
        freqMhz: {
          type: "number",
        },
        temps: {
          type: "array",
          items: {
            type: "object",
            required: ["zone", "type", "celsius"],
            properties: {
              zone: {
                type: "string",
                maxLength: 64,
              },
              type: {
                type: "string",
                maxLength: 64,
              },
              celsius: {
                type: "number",
              },
            },
          },
          maxItems: 64,
        },
        throttling: {
          type: "object",
          required: [
            "source",
            "underVoltage",
            "freqCapped",
            "throttled",
            "softTempLimit",
            "underVoltageOccurred",
            "freqCappedOccurred",
            "throttledOccurred",
            "softTempLimitOccurred",
          ],
          properties: {
            source: {
              anyOf: [
                {
                  type: "string",
                  const: "firmware",
                },
                {
                  type: "string",
                  const: "hwmon",
                },
              ],
            },
            underVoltage: {
              type: "boolean",
            },
            freqCapped: {
              type: "boolean",
            },
            throttled: {
              type: "boolean",
            },
            softTempLimit: {
              type: "boolean",
            },
            underVoltageOccurred: {
              type: "boolean",
            },
            freqCappedOccurred: {
              type: "boolean",
            },
            throttledOccurred: {
              type: "boolean",
            },
            softTempLimitOccurred: {
              type: "boolean",
            },
          },
        },
        rebootRequired: {
          type: "boolean",
        },
        memory: {
          type: "object",
          required: ["totalBytes", "usedBytes", "availableBytes"],
          properties: {
            totalBytes: {
              type: "integer",
              minimum: 0,
            },
            usedBytes: {
              type: "integer",
              minimum: 0,
            },
            availableBytes: {
              type: "integer",
              minimum: 0,
            },
          },
        },
        swap: {
          type: "object",
          required: ["totalBytes", "usedBytes"],
          properties: {
            totalBytes: {
              type: "integer",
              minimum: 0,
            },
            usedBytes: {
              type: "integer",
              minimum: 0,
            },
          },
        },
        disks: {
          type: "array",
          items: {
            type: "object",
            required: ["mount", "usedBytes", "sizeBytes"],
            properties: {
              mount: {
                type: "string",
                maxLength: 1024,
              },
              usedBytes: {
                type: "integer",
                minimum: 0,
              },
              sizeBytes: {
                type: "integer",
                minimum: 0,
              },
            },
          },
          maxItems: 256,
        },
        diskIo: {
          type: "object",
          required: ["readBps", "writeBps"],
          properties: {
            readBps: {
              type: "number",
            },
            writeBps: {
              type: "number",
            },
          },
        },
        net: {
          type: "array",
          items: {
            type: "object",
            required: ["iface", "rxBps", "txBps"],
            properties: {
              iface: {
                type: "string",
                maxLength: 64,
              },
              rxBps: {
                type: "number",
              },
              txBps: {
                type: "number",
              },
            },
          },
          maxItems: 256,
        },
        uptimeS: {
          type: "integer",
          minimum: 0,
        },
        procs: {
          type: "integer",
          minimum: 0,
        },
        custom: {
          type: "array",
          items: {
            type: "object",
            required: ["series", "value"],
            properties: {
              series: {
                type: "string",
                minLength: 1,
                maxLength: 256,
                pattern: "^[A-Za-z_:][A-Za-z0-9_:]*(\\{[^\\n]*\\})?$",
              },
              value: {
                type: "number",
              },
            },
          },
          maxItems: 1000,
        },
        checks: {
          type: "array",
          items: {
            type: "object",
            required: ["name", "kind", "target", "up", "reason", "since", "at"],
            properties: {
              name: {
                type: "string",
                minLength: 1,
                maxLength: 64,
              },
              kind: {
                anyOf: [
                  {
                    type: "string",
                    const: "unit",
                  },
                  {
                    type: "string",
                    const: "http",
                  },
                  {
                    type: "string",
                    const: "tcp",
                  },
                  {
                    type: "string",
                    const: "ping",
                  },
                ],
              },
              target: {
                type: "string",
                maxLength: 1024,
              },
              up: {
                type: "boolean",
              },
              reason: {
                type: "string",
                maxLength: 256,
              },
              since: {
                type: "integer",
                minimum: 0,
              },
              at: {
                type: "integer",
                minimum: 0,
              },
              latencyMs: {
                type: "number",
              },
              certExpiresAt: {
                type: "integer",
                minimum: 0,
              },
            },
          },
          maxItems: 256,
        },
        containers: {
          type: "array",
          items: {
            type: "object",
            required: ["id", "name", "image", "state", "restarts"],
            properties: {
              id: {
                type: "string",
                minLength: 1,
                maxLength: 64,
              },
              name: {
                type: "string",
                maxLength: 256,
              },
              image: {
                type: "string",
                maxLength: 512,
              },
              state: {
                type: "string",
                maxLength: 32,
              },
              health: {
                type: "string",
                maxLength: 32,
              },
              restarts: {
                type: "integer",
                minimum: 0,
              },
              recentRestarts: {
                type: "integer",
                minimum: 0,
              },
              exitCode: {
                type: "integer",
              },
              cpuPct: {
                type: "number",
              },
              memBytes: {
                type: "integer",
                minimum: 0,
              },
              memLimitBytes: {
                type: "integer",
                minimum: 0,
              },
              rxBps: {
                type: "number",
              },
              txBps: {
                type: "number",
              },
            },
          },
          maxItems: 200,
        },
      },
    },
  },
  log: {
    from: "agent",
    payload: {
      type: "object",
      required: ["level", "msg"],
      properties: {
        level: {
          anyOf: [
            {
              type: "string",
              const: "trace",
            },
            {
              type: "string",
              const: "debug",
            },
            {
              type: "string",
              const: "info",
            },
            {
              type: "string",
              const: "warn",
            },
            {
              type: "string",
              const: "error",
            },
            {
              type: "string",
              const: "fatal",
            },
          ],
        },
        msg: {
          type: "string",
          maxLength: 4096,
        },
        fields: {
          type: "object",
          patternProperties: {
            "^.*$": {},
          },
        },
      },
    },
  },
  bye: {
    from: "agent",
    payload: {
      type: "object",
      required: ["reason"],
      properties: {
        reason: {
          type: "string",
          maxLength: 256,
        },
      },
    },
  },
  ack: {
    from: "primary",
    payload: {
      type: "object",
      required: ["seq"],
      properties: {
        seq: {
          type: "integer",
          minimum: 0,
        },
      },
    },
  },
  error: {
    from: "primary",
    payload: {
      type: "object",
      required: ["code", "message"],
      properties: {
        code: {
          type: "string",
          maxLength: 64,
        },
        message: {
          type: "string",
          maxLength: 4096,
        },
        path: {
          type: "string",
          maxLength: 256,
        },
      },
    },
  },
  credential: {
    from: "primary",
    payload: {
      type: "object",
      required: ["identity", "key", "name"],
      properties: {
        identity: {
          type: "string",
          minLength: 1,
          maxLength: 128,
        },
        key: {
          type: "string",
          minLength: 43,
          maxLength: 43,
          pattern: "^[A-Za-z0-9_-]+$",
        },
        name: {
          type: "string",
          minLength: 1,
          maxLength: 253,
        },
      },
    },
  },
  cancel: {
    from: "primary",
    payload: {
      type: "object",
      required: ["id"],
      properties: {
        id: {
          type: "integer",
          minimum: 0,
        },
      },
    },
  },
  ping: {
    from: "primary",
    payload: {
      type: "object",
      properties: {},
    },
    response: {
      type: "object",
      required: ["time"],
      properties: {
        time: {
          type: "integer",
          minimum: 0,
        },
      },
    },
  },
  "details.get": {
    from: "primary",
    payload: {
      type: "object",
      properties: {},
    },
    response: {
      type: "object",
      required: [
        "hostname",
        "os",
        "kernel",
        "arch",
        "cpu",
        "memory",
        "disks",
        "interfaces",
        "agentVersion",
        "nodeVersion",
      ],
      properties: {
        hostname: {
          type: "string",
          maxLength: 253,
        },
        os: {
          type: "object",
          required: ["name", "version"],
          properties: {
            name: {
              type: "string",
              maxLength: 128,
            },
            version: {
              type: "string",
              maxLength: 128,
            },
          },
        },
        kernel: {
          type: "string",
          maxLength: 128,
        },
        arch: {
          type: "string",
          maxLength: 32,
        },
        cpu: {
          type: "object",
          required: ["model", "cores"],
          properties: {
            model: {
              type: "string",
              maxLength: 256,
            },
            cores: {
              type: "integer",
              minimum: 1,
            },
            minMhz: {
              type: "number",
            },
            maxMhz: {
              type: "number",
            },
          },
        },
        memory: {
          type: "object",
          required: ["totalBytes", "swapBytes"],
          properties: {
            totalBytes: {
              type: "integer",
              minimum: 0,
            },
            swapBytes: {
              type: "integer",
              minimum: 0,
            },
          },
        },
        disks: {
          type: "array",
          items: {
            type: "object",
            required: ["mount", "fs", "sizeBytes"],
            properties: {
              mount: {
                type: "string",
                maxLength: 1024,
              },
              fs: {
                type: "string",
                maxLength: 64,
              },
              sizeBytes: {
                type: "integer",
                minimum: 0,
              },
            },
          },
          maxItems: 256,
        },
        interfaces: {
          type: "array",
          items: {
            type: "object",
            required: ["name", "mac", "addresses"],
            properties: {
              name: {
                type: "string",
                maxLength: 64,
              },
              mac: {
                type: "string",
                maxLength: 64,
              },
              addresses: {
                type: "array",
                items: {
                  type: "string",
                  maxLength: 64,
                },
                maxItems: 64,
              },
            },
          },
          maxItems: 256,
        },
        bootTime: {
          type: "integer",
          minimum: 0,
        },
        agentVersion: {
          type: "string",
          maxLength: 64,
        },
        nodeVersion: {
          type: "string",
          maxLength: 64,
        },
        board: {
          type: "object",
          required: ["model", "serial", "revision"],
          properties: {
            model: {
              type: "string",
              maxLength: 256,
            },
            serial: {
              type: "string",
              maxLength: 64,
            },
            revision: {
              type: "string",
              maxLength: 64,
            },
          },
        },
        tasks: {
          type: "array",
          items: {
            type: "object",
            required: ["name", "description", "builtin", "disruptive", "args"],
            properties: {
              name: {
                type: "string",
                minLength: 1,
                maxLength: 64,
              },
              description: {
                type: "string",
                maxLength: 256,
              },
              builtin: {
                type: "boolean",
              },
              disruptive: {
                type: "boolean",
              },
              timeoutMs: {
                type: "integer",
                minimum: 0,
              },
              args: {
                type: "array",
                items: {
                  type: "object",
                  required: ["name", "type"],
                  properties: {
                    name: {
                      type: "string",
                      maxLength: 32,
                    },
                    type: {
                      anyOf: [
                        {
                          type: "string",
                          const: "string",
                        },
                        {
                          type: "string",
                          const: "integer",
                        },
                        {
                          type: "string",
                          const: "number",
                        },
                        {
                          type: "string",
                          const: "boolean",
                        },
                      ],
                    },
                    pattern: {
                      type: "string",
                      maxLength: 256,
                    },
                  },
                },
                maxItems: 32,
              },
            },
          },
          maxItems: 256,
        },
        updates: {
          type: "object",
          required: ["available", "checkedAt"],
          properties: {
            available: {
              type: "integer",
              minimum: 0,
            },
            checkedAt: {
              type: "integer",
              minimum: 0,
            },
          },
        },
        maxRunning: {
          type: "integer",
          minimum: 1,
          maximum: 64,
        },
      },
    },
  },
  "task.run": {
    from: "primary",
    payload: {
      type: "object",
      required: ["task", "args"],
      properties: {
        task: {
          type: "string",
          minLength: 1,
          maxLength: 64,
          pattern: "^[a-z][a-z0-9._-]*$",
        },
        args: {
          type: "object",
          patternProperties: {
            "^.*$": {
              type: "string",
              maxLength: 4096,
            },
          },
        },
        timeoutMs: {
          type: "integer",
          minimum: 1,
        },
      },
    },
    response: {
      type: "object",
      required: ["exitCode", "signal", "durationMs", "truncated"],
      properties: {
        exitCode: {
          anyOf: [
            {
              type: "integer",
            },
            {
              type: "null",
            },
          ],
        },
        signal: {
          anyOf: [
            {
              type: "string",
              maxLength: 16,
            },
            {
              type: "null",
            },
          ],
        },
        durationMs: {
          type: "integer",
          minimum: 0,
        },
        truncated: {
          type: "boolean",
        },
        timedOut: {
          type: "boolean",
        },
      },
    },
  },
  "task.output": {
    from: "agent",
    payload: {
      type: "object",
      required: ["run", "stream", "data"],
      properties: {
        run: {
          type: "integer",
          minimum: 0,
        },
        stream: {
          anyOf: [
            {
              type: "string",
              const: "stdout",
            },
            {
              type: "string",
              const: "stderr",
            },
          ],
        },
        data: {
          type: "string",
          maxLength: 65536,
        },
      },
    },
  },
  "logs.tail": {
    from: "primary",
    payload: {
      type: "object",
      required: ["lines"],
      properties: {
        lines: {
          type: "integer",
          minimum: 1,
          maximum: 10000,
        },
        follow: {
          type: "boolean",
        },
      },
    },
    response: {
      type: "object",
      required: ["lines"],
      properties: {
        lines: {
          type: "array",
          items: {
            type: "string",
          },
        },
      },
    },
  },
  "processes.top": {
    from: "primary",
    payload: {
      type: "object",
      required: ["n"],
      properties: {
        n: {
          type: "integer",
          minimum: 1,
          maximum: 100,
        },
        sampleMs: {
          type: "integer",
          minimum: 100,
          maximum: 5000,
        },
      },
    },
    response: {
      type: "object",
      required: ["sampledMs", "byCpu", "byMemory"],
      properties: {
        sampledMs: {
          type: "integer",
          minimum: 0,
        },
        byCpu: {
          type: "array",
          items: {
            type: "object",
            required: ["pid", "user", "name", "command", "cpuPct", "rssBytes"],
            properties: {
              pid: {
                type: "integer",
                minimum: 0,
              },
              user: {
                type: "string",
                maxLength: 64,
              },
              name: {
                type: "string",
                maxLength: 64,
              },
              command: {
                type: "string",
                maxLength: 512,
              },
              cpuPct: {
                type: "number",
                minimum: 0,
              },
              rssBytes: {
                type: "integer",
                minimum: 0,
              },
            },
          },
          maxItems: 100,
        },
        byMemory: {
          type: "array",
          items: {
            type: "object",
            required: ["pid", "user", "name", "command", "cpuPct", "rssBytes"],
            properties: {
              pid: {
                type: "integer",
                minimum: 0,
              },
              user: {
                type: "string",
                maxLength: 64,
              },
              name: {
                type: "string",
                maxLength: 64,
              },
              command: {
                type: "string",
                maxLength: 512,
              },
              cpuPct: {
                type: "number",
                minimum: 0,
              },
              rssBytes: {
                type: "integer",
                minimum: 0,
              },
            },
          },
          maxItems: 100,
        },
      },
    },
  },
};

export const WIRE_ERROR_SCHEMA: WireSpec["payload"] = {
  type: "object",
  required: ["code", "message"],
  properties: {
    code: {
      type: "string",
      maxLength: 64,
    },
    message: {
      type: "string",
      maxLength: 4096,
    },
    path: {
      type: "string",
      maxLength: 256,
    },
  },
};
