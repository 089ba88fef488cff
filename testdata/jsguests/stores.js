/// <reference types="@fastly/js-compute" />
// The KV and secret store guest of edgehost's JS SDK end-to-end tests
// (internal/jssdk): fastly:kv-store and fastly:secret-store, one route each.
import { KVStore } from "fastly:kv-store";
import { SecretStore } from "fastly:secret-store";

const routes = {
  // GET /kv/get?key=K: the value of K in store "kvs", its metadata in
  // X-Metadata; 404 when absent.
  "/kv/get": async (req, url) => {
    const e = await new KVStore("kvs").get(url.searchParams.get("key"));
    if (e === null) return new Response("absent", { status: 404 });
    return new Response(await e.text(), { headers: { "x-metadata": e.metadataText() ?? "" } });
  },

  // POST /kv/put?key=K[&mode=M][&meta=X][&ttl=N]: the request body stored
  // under K.
  "/kv/put": async (req, url) => {
    const opts = {};
    for (const k of ["mode", "metadata"]) {
      const v = url.searchParams.get(k);
      if (v !== null) opts[k] = v;
    }
    if (url.searchParams.has("ttl")) opts.ttl = Number(url.searchParams.get("ttl"));
    await new KVStore("kvs").put(url.searchParams.get("key"), await req.text(), opts);
    return new Response("stored");
  },

  // POST /kv/delete?key=K
  "/kv/delete": async (req, url) => {
    await new KVStore("kvs").delete(url.searchParams.get("key"));
    return new Response("deleted");
  },

  // GET /kv/list?prefix=P&limit=N: every key with prefix P, page by page
  // of N, as JSON {pages, keys}.
  "/kv/list": async (req, url) => {
    const store = new KVStore("kvs");
    const keys = [];
    let cursor;
    let pages = 0;
    do {
      const opts = { prefix: url.searchParams.get("prefix") ?? undefined, limit: Number(url.searchParams.get("limit") ?? 100) };
      if (cursor) opts.cursor = cursor;
      const page = await store.list(opts);
      keys.push(...page.list);
      cursor = page.cursor;
      pages++;
    } while (cursor && pages < 100);
    return Response.json({ pages, keys });
  },

  // GET /kv/parallel: three lookups in flight at once (Promise.all).
  "/kv/parallel": async () => {
    const store = new KVStore("kvs");
    const es = await Promise.all(["seeded", "absent", "seeded"].map((k) => store.get(k)));
    return Response.json(await Promise.all(es.map((e) => (e === null ? null : e.text()))));
  },

  // GET /kv/nostore: opening a store that does not exist throws.
  "/kv/nostore": async () => {
    try {
      new KVStore("no-such-store");
      return new Response("opened", { status: 500 });
    } catch (e) {
      return new Response(`${e.name}: ${e.message}`);
    }
  },

  // GET /secret?key=K: the plaintext of secret K of store "secrets".
  "/secret": async (req, url) => {
    const s = await new SecretStore("secrets").get(url.searchParams.get("key"));
    return s === null ? new Response("absent", { status: 404 }) : new Response(s.plaintext());
  },

  // GET /secret/frombytes: SecretStore.fromBytes round trip.
  "/secret/frombytes": async () => new Response(SecretStore.fromBytes(new TextEncoder().encode("made from bytes")).plaintext()),
};

addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  const route = routes[url.pathname];
  event.respondWith(
    route
      ? route(event.request, url).catch((e) => new Response(`guest error: ${e}\n${e.stack}`, { status: 599 }))
      : new Response("no such route\n", { status: 404 }),
  );
});
