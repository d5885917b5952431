import { AuthError, describeError, type Message, PROTOCOL_VERSION } from "@picluster/common";
import type { Redeemed } from "../credentials.js";
import type { HandlerContext } from "../dispatcher.js";
import type { Session } from "../session.js";

/**
 * The handshake: decide who the node is from how it authenticated, give a
 * joining node its own credential, register it and send `welcome`.
 */
export function handleHello(ctx: HandlerContext, session: Session, msg: Message<"hello">): void {
  const hello = msg.payload;
  if (!hello.protocols.includes(PROTOCOL_VERSION)) {
    session.sendError(
      "E_UNSUPPORTED_VERSION",
      `this primary speaks protocol v${PROTOCOL_VERSION}; the agent offers ${hello.protocols.join(", ")}`,
    );
    session.close("no common protocol version");
    return;
  }
  let id = hello.nodeId;
  let name = hello.name;
  const auth = session.auth;
  if (auth.kind === "join") {
    if (ctx.credentials === undefined)
      throw new AuthError("E_INTERNAL", "join without a credential store");
    let issued: Redeemed;
    try {
      issued = ctx.credentials.redeem(auth.tokenId, hello.nodeId);
    } catch (err) {
      // Refusals (used, expired, id taken) are the peer's; anything else (a full disk) is ours.
      const ours = !(err instanceof AuthError);
      const code = err instanceof AuthError ? err.code : "E_INTERNAL";
      session.sendError(code, describeError(err));
      (ours ? session.log.error : session.log.warn).call(session.log, "join refused", {
        code,
        err: describeError(err),
        nodeId: hello.nodeId,
      });
      session.close("join refused");
      return;
    }
    name = issued.name;
    session.credentialIdentity = issued.identity;
    if (issued.superseded !== undefined) {
      // The node crashed before saving its key, or someone else holds its token: either way the
      // earlier key is gone, and a session still using it is cut (replaced below, or by the poll).
      session.log.warn("join token presented again: a fresh credential replaces the earlier one", {
        name,
        nodeId: id,
        superseded: issued.superseded,
        identity: issued.identity,
      });
    }
    session.send("credential", {
      identity: issued.identity,
      key: issued.key.toString("base64url"),
      name,
    });
    session.log.info("node joined with a token and got its credential", {
      name,
      nodeId: id,
      identity: issued.identity,
    });
  } else if (auth.kind === "node") {
    // Revoked between its TLS handshake and this hello: refuse it here too.
    if (ctx.credentials === undefined || ctx.credentials.isRevoked(auth.identity)) {
      session.sendError("E_REVOKED", "this node's credential was revoked");
      session.close("credential revoked");
      return;
    }
    name = auth.name;
    ctx.credentials.confirm(auth.identity);
    if (auth.nodeId !== undefined && auth.nodeId !== hello.nodeId) {
      session.log.warn(
        "node id changed since the credential was issued; keeping the credential's",
        {
          credentialNodeId: auth.nodeId,
          helloNodeId: hello.nodeId,
        },
      );
      id = auth.nodeId;
    }
  }

  ctx.sessions.bind(id, session);
  const now = ctx.clock.now();
  // A node removed with its history kept, joining again: numbering goes on after its kept samples.
  const keptSeq = ctx.registry.get(id) === undefined ? (ctx.store?.lastStoredSeq(id) ?? 0) : 0;
  const node = ctx.registry.connected(
    {
      id,
      name,
      labels: { ...hello.labels },
      address: session.peer,
      agentVersion: hello.version,
      legacy: false,
    },
    now,
  );
  if (keptSeq > 0) ctx.registry.markStored(id, keptSeq);
  session.identified(id, session.log.child({ node: name, nodeId: id }));
  ctx.liveness.watch(id);
  session.send("welcome", {
    protocol: PROTOCOL_VERSION,
    heartbeatMs: ctx.settings.heartbeatMs,
    vitalsMs: ctx.settings.vitalsMs,
    lastSeq: node.lastSeq,
    primaryVersion: ctx.settings.primaryVersion,
  });
  session.log.info("node connected", { version: hello.version, lastSeq: node.lastSeq });
}
