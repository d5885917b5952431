/** A notification, as the alert engine hands it to the channels. */
export interface AlertMessage {
  /** firing: a rule started to hold; resolved: it stopped; test: `picluster alerts test`. */
  status: "firing" | "resolved" | "test";
  /** The rule's name, e.g. "node_down", "under_voltage", or a config `[alert.NAME]`. */
  rule: string;
  severity: "critical" | "warning" | "info";
  /** One line in plain words: "pi-3 is down", "12 nodes are down". */
  title: string;
  /** A few lines in plain words: what, since when, what to check. */
  text: string;
  /** The nodes concerned (one, or many for a cluster-wide summary). */
  nodes: Array<{ id: string; name: string; value?: number | null }>;
  /** When it fired or resolved, ms since the epoch. */
  at: number;
  /** A link to the primary's dashboard page for it, when known. */
  url?: string;
}

/** Where the engine sends messages: the channels (delivery.ts), or a test's list. */
export interface Notifier {
  /** The configured channel names. */
  readonly channelNames: readonly string[];
  /** Queue `msg` for each named channel; returns at once, never throws for a channel's sake. */
  deliver(channels: readonly string[], msg: AlertMessage): void;
}
