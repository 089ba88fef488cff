/// <reference types="@fastly/js-compute" />
// Routes of app.js for the platform services (internal/jssdk services_test.go):
// ACLs, geolocation, device detection, edge rate limiting and shielding
// through the JS SDK's own modules.
import { Acl } from "fastly:acl";
import { getGeolocationForIpAddress } from "fastly:geolocation";
import { Device } from "fastly:device";
import { EdgeRateLimiter, PenaltyBox, RateCounter } from "fastly:edge-rate-limiter";
import { Shield } from "fastly:shielding";

export const serviceRoutes = {
  // GET /svc/acl?ip=A: the entry of ACL "blocklist" matching A, or null.
  "/svc/acl": async (req, url) => Response.json(await Acl.open("blocklist").lookup(url.searchParams.get("ip"))),

  // GET /svc/geo?ip=A: some of A's geolocation fields, or null.
  "/svc/geo": async (req, url) => {
    const g = getGeolocationForIpAddress(url.searchParams.get("ip"));
    return Response.json(
      g && {
        city: g.city,
        as_number: g.as_number,
        country_code: g.country_code,
        country_code3: g.country_code3,
        utc_offset: g.utc_offset,
        latitude: g.latitude,
      },
    );
  },

  // GET /svc/device?ua=U: the device fields for U, or null.
  "/svc/device": async (req, url) => {
    const d = Device.lookup(url.searchParams.get("ua"));
    return Response.json(d && { name: d.name, brand: d.brand, isMobile: d.isMobile, isTablet: d.isTablet });
  },

  // GET /svc/erl?entry=E: checkRate(E, 1, 1 s, 10 per second, 1 minute),
  // then what the rate counter and penalty box report.
  "/svc/erl": async (req, url) => {
    const entry = url.searchParams.get("entry");
    const rc = new RateCounter("js-requests");
    const pb = new PenaltyBox("js-offenders");
    const blocked = new EdgeRateLimiter(rc, pb).checkRate(entry, 1, 1, 10, 1);
    return Response.json({ blocked, rate: rc.lookupRate(entry, 1), count: rc.lookupCount(entry, 10), boxed: pb.has(entry) });
  },

  // GET /svc/shield?name=N: whether this host is shield N; for another
  // shield, a fetch through its unencrypted backend.
  "/svc/shield": async (req, url) => {
    const shield = new Shield(url.searchParams.get("name"));
    if (shield.runningOn()) {
      return Response.json({ runningOn: true });
    }
    const be = shield.unencryptedBackend();
    const r = await fetch("http://shield.test/echo?via=shield", { backend: be });
    return Response.json({ runningOn: false, backend: be.name, status: r.status, body: await r.text() });
  },
};
