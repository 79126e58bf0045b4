// A live Fedify peer for Tocsin's interoperability test (tests/it/fedify.rs).
//
// One actor, `peer`, with an RSA and an Ed25519 key. Its inbox records every
// activity Fedify accepted (Fedify calls a listener only after the HTTP
// signature, or a proof, verified). A small control API lets the Rust test
// drive it:
//   POST /control/follow   {"handle": "@alerts@localhost:1234"}
//   POST /control/note     {"content": "..."}      -> {"id": note id}
//   GET  /control/received                          -> activities received
//   GET  /control/outgoing                          -> POSTs Fedify sent
//
// Usage: PORT=1234 node peer.mjs  (prints "ready" when listening)

import http from "node:http";
import { Temporal } from "@js-temporal/polyfill";
import {
  createFederation,
  generateCryptoKeyPair,
  MemoryKvStore,
} from "@fedify/fedify";
import {
  Accept,
  Announce,
  Create,
  Delete,
  Endpoints,
  Follow,
  Note,
  Person,
  PUBLIC_COLLECTION,
  Undo,
  Update,
} from "@fedify/vocab";

const port = Number(process.env.PORT);
const origin = `http://localhost:${port}`;

// Fedify always uses https for `acct:` WebFinger; on loopback every
// server here speaks plain http, so rewrite https://localhost:… to http.
// Outgoing POSTs are recorded with the signature scheme they carried.
const outgoing = [];
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  let request = new Request(input, init);
  if (request.url.startsWith("https://localhost:")) {
    const url = request.url.replace("https://", "http://");
    request = new Request(url, request);
  }
  const response = await realFetch(request);
  if (request.method === "POST") {
    outgoing.push({
      url: request.url,
      rfc9421: request.headers.has("signature-input"),
      cavage: request.headers.has("signature") &&
        !request.headers.has("signature-input"),
      status: response.status,
    });
  }
  return response;
};

const rsa = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");
const ed25519 = await generateCryptoKeyPair("Ed25519");

const federation = createFederation({
  kv: new MemoryKvStore(),
  origin,
  allowPrivateAddress: true,
});

const followers = new Map(); // actor id -> Actor
const received = [];
const notes = new Map(); // id -> Note

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== "peer") return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify peer",
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      followers: ctx.getFollowersUri(identifier),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
    });
  })
  .setKeyPairsDispatcher((_ctx, identifier) =>
    identifier === "peer" ? [rsa, ed25519] : []
  );

federation.setFollowersDispatcher(
  "/users/{identifier}/followers",
  () => ({
    items: [...followers.values()].map((a) => ({
      id: a.id,
      inboxId: a.inboxId,
      endpoints: a.endpoints,
    })),
  }),
);

federation.setObjectDispatcher(
  Note,
  "/notes/{id}",
  (ctx, values) => notes.get(ctx.getObjectUri(Note, values).href) ?? null,
);

async function record(activity) {
  const json = await activity.toJsonLd({ format: "compact" });
  received.push({
    type: json.type,
    id: activity.id?.href,
    actor: activity.actorId?.href,
    object: json.object,
  });
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Follow, async (ctx, follow) => {
    await record(follow);
    const follower = await follow.getActor(ctx);
    if (follower == null) return;
    followers.set(follower.id.href, follower);
    await ctx.sendActivity(
      { identifier: "peer" },
      follower,
      new Accept({
        id: new URL(`${origin}/accepts/${crypto.randomUUID()}`),
        actor: ctx.getActorUri("peer"),
        object: follow,
      }),
    );
  })
  .on(Accept, (_ctx, activity) => record(activity))
  .on(Create, (_ctx, activity) => record(activity))
  .on(Update, (_ctx, activity) => record(activity))
  .on(Delete, (_ctx, activity) => record(activity))
  .on(Announce, (_ctx, activity) => record(activity))
  .on(Undo, (_ctx, activity) => record(activity))
  .onError((_ctx, error) => console.error("peer: listener failed:", error))
  .onUnverifiedActivity((_ctx, activity, reason) => {
    console.error("peer: unverified", activity?.id?.href, JSON.stringify(reason));
  });

async function control(req, body) {
  const ctx = federation.createContext(new URL(origin), undefined);
  const url = new URL(req.url, origin);
  if (req.method === "POST" && url.pathname === "/control/follow") {
    const target = await ctx.lookupObject(body.handle);
    if (target == null) return { status: 404, json: { error: "not found" } };
    await ctx.sendActivity(
      { identifier: "peer" },
      target,
      new Follow({
        id: new URL(`${origin}/follows/${crypto.randomUUID()}`),
        actor: ctx.getActorUri("peer"),
        object: target.id,
      }),
    );
    return { status: 200, json: { id: target.id.href } };
  }
  if (req.method === "POST" && url.pathname === "/control/note") {
    const id = crypto.randomUUID();
    const note = new Note({
      id: ctx.getObjectUri(Note, { id }),
      attribution: ctx.getActorUri("peer"),
      content: body.content,
      to: PUBLIC_COLLECTION,
      cc: ctx.getFollowersUri("peer"),
      published: Temporal.Now.instant(),
    });
    notes.set(note.id.href, note);
    await ctx.sendActivity(
      { identifier: "peer" },
      "followers",
      new Create({
        id: new URL(`${note.id.href}#create`),
        actor: ctx.getActorUri("peer"),
        object: note,
        to: PUBLIC_COLLECTION,
        cc: ctx.getFollowersUri("peer"),
      }),
    );
    return { status: 200, json: { id: note.id.href } };
  }
  if (req.method === "GET" && url.pathname === "/control/received") {
    return { status: 200, json: received };
  }
  if (req.method === "GET" && url.pathname === "/control/outgoing") {
    return { status: 200, json: outgoing };
  }
  return null;
}

const server = http.createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const raw = Buffer.concat(chunks);
  try {
    if (req.url.startsWith("/control/")) {
      const answer = await control(
        req,
        raw.length ? JSON.parse(raw.toString()) : {},
      );
      if (answer != null) {
        res.writeHead(answer.status, { "content-type": "application/json" });
        res.end(JSON.stringify(answer.json));
        return;
      }
    }
    const request = new Request(new URL(req.url, origin), {
      method: req.method,
      headers: Object.entries(req.headers).flatMap(([k, v]) =>
        Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]
      ),
      body: ["GET", "HEAD"].includes(req.method) ? undefined : raw,
    });
    const response = await federation.fetch(request, {
      contextData: undefined,
    });
    if (response.status >= 400) {
      // Diagnostics for the Rust test's output.
      console.error(
        `peer: ${req.method} ${req.url} -> ${response.status}`,
        JSON.stringify(req.headers),
        await response.clone().text(),
      );
    }
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (e) {
    console.error(e);
    res.writeHead(500, { "content-type": "text/plain" });
    res.end(String(e?.stack ?? e));
  }
});

server.listen(port, "127.0.0.1", () => console.log("ready"));
