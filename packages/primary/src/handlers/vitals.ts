import type { Message } from "@picluster/common";
import type { HandlerContext } from "../dispatcher.js";
import type { Session } from "../session.js";

/** How far a sample's own timestamp may be from ours before we trust our clock instead. */
const FUTURE_SKEW_MS = 60_000;
const PAST_WINDOW_MS = 7 * 86_400_000;

/**
 * A sample goes to the registry at once and to the store in the next batch;
 * the returned promise resolves at commit, and only then is it acknowledged.
 */
export function handleVitals(
  ctx: HandlerContext,
  session: Session,
  msg: Message<"vitals">,
): Promise<void> | undefined {
  if (session.nodeId === undefined) return undefined;
  const now = ctx.clock.now();
  ctx.registry.setVitals(session.nodeId, msg.payload, msg.seq, now);
  const id = session.nodeId;
  const node = ctx.registry.get(id);
  const seq = msg.seq;
  if (seq === undefined) return undefined;
  if (ctx.store === undefined || node === undefined) {
    ctx.registry.markStored(id, seq);
    return undefined;
  }
  // A replayed sample keeps the time it was taken; a clock far off (a Pi
  // booted without a real-time clock) is replaced by the time it arrived.
  const ts = msg.ts > now + FUTURE_SKEW_MS || msg.ts < now - PAST_WINDOW_MS ? now : msg.ts;
  // Only a committed sample counts as stored: replays of uncommitted ones are not dropped.
  const stored = ctx.store.addVitals(node, ts, seq, msg.payload);
  // Scale-out: acknowledged only once the other primaries can have it too (the stream holds it).
  const shared = ctx.shareVitals?.(id, ts, seq, msg.payload);
  return (shared === undefined ? stored : Promise.all([stored, shared])).then(() =>
    ctx.registry.markStored(id, seq),
  );
}
