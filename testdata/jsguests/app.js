/// <reference types="@fastly/js-compute" />
// The guest of edgehost's JS SDK end-to-end tests (internal/jssdk): one route
// per feature, each answering what the test checks.
import { Backend } from "fastly:backend";
import { ConfigStore } from "fastly:config-store";
import { Logger } from "fastly:logger";
import { env } from "fastly:env";
import { serviceRoutes } from "./services.js";
import { cacheRoutes } from "./cache.js";

// What /state keeps between requests of one sandbox: a fresh sandbox
// starts with none of it.
let stateRequests = 0;
let stateLast = null;
const stateSeen = [];

const routes = {
  // GET /hello: a fixed answer.
  "/hello": async () =>
    new Response("hello from js\n", { headers: { "content-type": "text/plain" } }),

  // GET /static: fetch through the backend "origin" of fastly.toml.
  "/static": async (req) => {
    const r = await fetch("http://origin.test/echo?via=static", {
      backend: "origin",
      headers: { "x-from-js": "static" },
    });
    return new Response(await r.text(), {
      status: r.status,
      headers: { "x-origin-header": r.headers.get("x-origin") ?? "" },
    });
  },

  // GET /dynamic?target=host:port: register a dynamic backend with HTTP
  // and TCP keepalive options, fetch through it, and answer the settings
  // the JS API reads back.
  "/dynamic": async (req, url) => {
    const target = url.searchParams.get("target");
    const be = new Backend({
      name: "dyn-" + target.replace(/[^0-9a-z]/gi, "-"),
      target,
      connectTimeout: 2500,
      firstByteTimeout: 7000,
      betweenBytesTimeout: 4000,
      httpKeepalive: 45000,
      tcpKeepalive: { timeSecs: 21, intervalSecs: 7, probes: 4 },
    });
    const r = await fetch(`http://${target}/echo?via=dynamic`, { backend: be });
    return Response.json({
      status: r.status,
      body: await r.text(),
      name: be.name,
      isDynamic: be.isDynamic,
      target: be.target,
      port: be.port,
      connectTimeout: be.connectTimeout,
      firstByteTimeout: be.firstByteTimeout,
      betweenBytesTimeout: be.betweenBytesTimeout,
      httpKeepaliveTime: be.httpKeepaliveTime,
      tcpKeepalive: be.tcpKeepalive,
    });
  },

  // GET /all?n=N&key=K: N fetches at once; the origin answers them only
  // once all N are in flight together (a barrier named K).
  "/all": async (req, url) => {
    const n = Number(url.searchParams.get("n"));
    const key = url.searchParams.get("key");
    const bodies = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        fetch(`http://origin.test/barrier?key=${key}&n=${n}&i=${i}`, { backend: "origin" }).then((r) => r.text()),
      ),
    );
    return Response.json(bodies);
  },

  // GET /race?fetch_ms=F&timer_ms=T: a fetch held F ms by the origin
  // raced against a T ms timer; answers which won.
  "/race": async (req, url) => {
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve("timer"), Number(url.searchParams.get("timer_ms")));
    });
    const fetched = fetch(`http://origin.test/delay?ms=${url.searchParams.get("fetch_ms")}&i=race`, {
      backend: "origin",
    }).then((r) => r.text());
    const winner = await Promise.race([fetched, timeout]);
    clearTimeout(timer);
    return new Response(winner === "timer" ? "timer" : "fetch:" + winner);
  },

  // GET /transform?n=BYTES: an origin body of n bytes piped through a
  // TransformStream that upper-cases ASCII letters, streamed to the client.
  "/transform": async (req, url) => {
    const r = await fetch(`http://origin.test/letters?n=${url.searchParams.get("n")}`, { backend: "origin" });
    const dec = new TextDecoder();
    const enc = new TextEncoder();
    const upper = new TransformStream({
      transform(chunk, controller) {
        controller.enqueue(enc.encode(dec.decode(chunk, { stream: true }).toUpperCase()));
      },
    });
    return new Response(r.body.pipeThrough(upper), { headers: { "x-transformed": "upper" } });
  },

  // POST /echo: the client's body read whole by the guest and sent back,
  // with its length and SHA-256 (hex) computed by the guest.
  "/echo": async (req) => {
    const buf = await req.arrayBuffer();
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", buf));
    const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
    return new Response(buf, { headers: { "x-length": String(buf.byteLength), "x-sha256": hex } });
  },

  // POST /proxy: the client's body streamed to the origin, the origin's
  // answer streamed back.
  "/proxy": async (req) => {
    const r = await fetch("http://origin.test/sink", { backend: "origin", method: "POST", body: req.body });
    return new Response(r.body, { status: r.status, headers: { "x-origin-length": r.headers.get("x-length") ?? "" } });
  },

  // GET /config?key=K: a value of config store "settings".
  "/config": async (req, url) => {
    const v = new ConfigStore("settings").get(url.searchParams.get("key"));
    return v === null ? new Response("missing", { status: 404 }) : new Response(v);
  },

  // GET /log?msg=M: M logged to the endpoint "applog".
  "/log": async (req, url) => {
    new Logger("applog").log(url.searchParams.get("msg"));
    return new Response("logged");
  },

  // GET /env: the FASTLY_* environment as fastly:env reads it.
  "/env": async () =>
    Response.json(
      Object.fromEntries(
        ["FASTLY_HOSTNAME", "FASTLY_POP", "FASTLY_REGION", "FASTLY_SERVICE_ID", "FASTLY_SERVICE_VERSION", "FASTLY_TRACE_ID"].map(
          (k) => [k, env(k)],
        ),
      ),
    ),

  // GET /state?token=T[&grow_mb=N]: counts the sandbox's requests in a
  // module-level variable and in globalThis, keeps T in module-level
  // state, and answers what it found there from earlier requests;
  // grow_mb first makes an N MiB array (the linear memory grows) and
  // writes its first and last bytes.
  "/state": async (req, url) => {
    const grow = Number(url.searchParams.get("grow_mb") ?? 0);
    const held = grow > 0 ? new Uint8Array(grow << 20) : null;
    if (held) held[0] = held[held.length - 1] = 1;
    stateRequests++;
    globalThis.stateCount = (globalThis.stateCount ?? 0) + 1;
    const before = stateLast;
    stateLast = url.searchParams.get("token");
    stateSeen.push(stateLast);
    return Response.json({
      requests: stateRequests,
      global: globalThis.stateCount,
      before,
      seen: stateSeen.length,
      held: held ? held.length : 0,
    });
  },

  // The platform services: services.js.
  ...serviceRoutes,

  // The readthrough cache: cache.js.
  ...cacheRoutes,
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
