/// <reference types="@fastly/js-compute" />
// The simple cache guest of edgehost's JS SDK end-to-end tests
// (internal/jssdk): fastly:cache's SimpleCache, which the JS SDK runs on
// the core cache hostcalls (fastly_cache) and, for purge, on
// fastly_purge.purge_surrogate_key.
import { SimpleCache } from "fastly:cache";

const routes = {
  // GET /sc/getorset?key=K&value=V&ttl=S: getOrSet; X-Produced says
  // whether the value producer ran in this request.
  "/sc/getorset": async (req, url) => {
    let produced = false;
    const entry = await SimpleCache.getOrSet(url.searchParams.get("key"), async () => {
      produced = true;
      return { value: url.searchParams.get("value"), ttl: Number(url.searchParams.get("ttl") ?? 60) };
    });
    return new Response(await entry.text(), { headers: { "x-produced": String(produced) } });
  },

  // GET /sc/get?key=K: the value, or 404 when there is none.
  "/sc/get": async (req, url) => {
    const entry = SimpleCache.get(url.searchParams.get("key"));
    if (entry === null) return new Response("absent", { status: 404 });
    return new Response(await entry.text());
  },

  // POST /sc/purge?key=K: purge the key, globally.
  "/sc/purge": async (req, url) => {
    SimpleCache.purge(url.searchParams.get("key"), { scope: "global" });
    return new Response("purged");
  },
};

addEventListener("fetch", (event) =>
  event.respondWith(
    (async () => {
      const url = new URL(event.request.url);
      const route = routes[url.pathname];
      if (!route) return new Response("no route " + url.pathname, { status: 404 });
      try {
        return await route(event.request, url);
      } catch (e) {
        return new Response("error: " + e.message, { status: 500 });
      }
    })(),
  ),
);
