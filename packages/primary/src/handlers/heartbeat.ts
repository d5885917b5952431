import type { Message } from "@picluster/common";
import type { HandlerContext } from "../dispatcher.js";
import type { Session } from "../session.js";

/** The dispatcher already marked the node seen; a heartbeat also carries the outbox's drop count. */
export function handleHeartbeat(
  ctx: HandlerContext,
  session: Session,
  msg: Message<"heartbeat">,
): void {
  if (session.nodeId === undefined) return;
  const before = ctx.registry.get(session.nodeId)?.dropped ?? 0;
  if (msg.payload.dropped > before) {
    session.log.warn("agent dropped vitals samples from a full outbox", {
      dropped: msg.payload.dropped,
      since: before,
    });
  }
  ctx.registry.setDropped(session.nodeId, msg.payload.dropped);
}
