/**
 * The issuer key cache and the verifier with a clock the test moves (the token endpoint's own clock cannot be
 * moved): key rotation picked up after the refresh interval, bounded lifetimes, an issuer that goes down,
 * the data center cache shared between isolates, and the replay window's end. Real HTTP to the local issuer.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FederationVerifier } from "../../src/auth/federation";
import { IssuerKeys, JWKS_MAX_LIFETIME_SECONDS, JWKS_MIN_LIFETIME_SECONDS } from "../../src/auth/oidc-keys";
import { parseTrustPolicy } from "../../src/auth/oidc-policy";
import { ReplayGuard } from "../../src/auth/oidc-replay";
import { TestIssuer, githubClaims } from "../helpers/oidc";

const AUDIENCE = "https://registry.test";

/** A verifier whose clock is `start + offset`; `cache` stands for the data center's Cache API. */
function setup(issuer: TestIssuer, cache?: Cache, policy: Record<string, unknown> = {}) {
  const clock = { offset: 0 };
  const now = () => Date.now() + clock.offset;
  const keys = new IssuerKeys({ allowInsecure: true, cache, now });
  const verifier = new FederationVerifier({ keys, replay: new ReplayGuard(env.REGISTRY_KV, cache), allowInsecure: true, now });
  const policies = [parseTrustPolicy({ issuer: issuer.issuer, audiences: [AUDIENCE], subject: "repo:octo-org/octo-repo:*", ...policy }, "p1", true)];
  const background: Promise<unknown>[] = [];
  /** A GitHub-shaped token issued at the verifier's now. */
  const token = (overrides: Record<string, unknown> = {}) => {
    const iat = Math.floor(now() / 1000);
    return issuer.sign(githubClaims(issuer.issuer, AUDIENCE, { iat, nbf: iat - 600, exp: iat + 300, ...overrides }));
  };
  const verify = async (jwt: string) => verifier.verify(policies, jwt, (work) => background.push(work));
  return { clock, token, verify, keys, settle: () => Promise.all(background) };
}

describe("issuer keys with a moving clock", () => {
  it("picks up a key rotation once the refresh interval has passed, with one fetch", async () => {
    const issuer = await TestIssuer.create();
    const { clock, token, verify } = setup(issuer);
    expect(await verify(await token())).toMatchObject({ ok: true });
    await issuer.rotate("ES256");
    clock.offset = 30_000;
    expect(await verify(await token())).toMatchObject({ ok: false, reason: expect.stringMatching(/^unknown kid/) });
    clock.offset = 61_000;
    expect(await verify(await token())).toMatchObject({ ok: true });
    expect(await issuer.stats()).toEqual({ discovery: 2, jwks: 2 });
    // A forged kid right after that refresh costs no fetch.
    expect(await verify(await issuer.sign(githubClaims(issuer.issuer, AUDIENCE), { kid: "forged" }))).toMatchObject({ ok: false });
    expect(await issuer.stats()).toEqual({ discovery: 2, jwks: 2 });
  });

  it("a retired key stops verifying once the refreshed set drops it", async () => {
    const issuer = await TestIssuer.create();
    const { clock, token, verify } = setup(issuer);
    const oldKid = issuer.currentKid;
    expect(await verify(await token())).toMatchObject({ ok: true });
    await issuer.rotate("RS256", { dropOld: true });
    clock.offset = (JWKS_MIN_LIFETIME_SECONDS * 3 + 1) * 1000; // past the default 15-minute lifetime
    expect(await verify(await token())).toMatchObject({ ok: true });
    const iat = Math.floor((Date.now() + clock.offset) / 1000);
    const signedByOld = await issuer.sign(githubClaims(issuer.issuer, AUDIENCE, { iat, nbf: iat, exp: iat + 300 }), { kid: oldKid });
    expect(await verify(signedByOld)).toMatchObject({ ok: false, reason: expect.stringMatching(/^unknown kid/) });
  });

  it("an issuer that goes down: cached keys work until they expire, then logins are refused", async () => {
    const issuer = await TestIssuer.create();
    await issuer.control({ maxAge: 600 });
    const { clock, token, verify } = setup(issuer);
    expect(await verify(await token())).toMatchObject({ ok: true });
    await issuer.control({ down: true });
    clock.offset = 599_000;
    expect(await verify(await token())).toMatchObject({ ok: true });
    clock.offset = 601_000;
    expect(await verify(await token())).toMatchObject({ ok: false, reason: expect.stringMatching(/discovery fetch answered 503/) });
    // Not asked again within the minute.
    clock.offset = 630_000;
    expect(await verify(await token())).toMatchObject({ ok: false, reason: expect.stringMatching(/last fetch failed/) });
    expect((await issuer.stats()).discovery).toBe(2);
    await issuer.control({ down: false });
    clock.offset = 662_000;
    expect(await verify(await token())).toMatchObject({ ok: true });
  });

  it("bounds the JWKS lifetime: max-age 0 is cached 5 minutes, a day-long max-age 1 hour", async () => {
    for (const [maxAge, lifetime] of [[0, JWKS_MIN_LIFETIME_SECONDS], [86_400, JWKS_MAX_LIFETIME_SECONDS]] as const) {
      const issuer = await TestIssuer.create();
      await issuer.control({ maxAge });
      const { clock, token, verify } = setup(issuer);
      expect(await verify(await token())).toMatchObject({ ok: true });
      clock.offset = (lifetime - 1) * 1000;
      expect(await verify(await token())).toMatchObject({ ok: true });
      expect((await issuer.stats()).jwks).toBe(1);
      clock.offset = (lifetime + 1) * 1000;
      expect(await verify(await token())).toMatchObject({ ok: true });
      expect((await issuer.stats()).jwks).toBe(2);
    }
  });

  it("the data center cache serves another isolate's fetch (no second outbound call)", async () => {
    const issuer = await TestIssuer.create();
    const cache = await caches.open(`federation-test-${crypto.randomUUID()}`);
    const first = setup(issuer, cache);
    expect(await first.verify(await first.token())).toMatchObject({ ok: true });
    const second = setup(issuer, cache);
    expect(await second.verify(await second.token())).toMatchObject({ ok: true });
    expect(await issuer.stats()).toEqual({ discovery: 1, jwks: 1 });
  });

  it("replay: another isolate sees the first use (data center cache, KV) and the window ends for it too", async () => {
    const issuer = await TestIssuer.create();
    const cache = await caches.open(`federation-test-${crypto.randomUUID()}`);
    const first = setup(issuer, cache, { replayWindowSeconds: 60 });
    const jwt = await first.token();
    expect(await first.verify(jwt)).toMatchObject({ ok: true });
    await first.settle();
    const second = setup(issuer, cache, { replayWindowSeconds: 60 });
    expect(await second.verify(jwt)).toMatchObject({ ok: true });
    second.clock.offset = 61_000;
    expect(await second.verify(jwt)).toMatchObject({ ok: false, reason: expect.stringMatching(/^replayed 6\d s after first use \(window 60 s\)$/) });
    // Without the cache (another data center), KV carries the first use.
    const elsewhere = setup(issuer, undefined, { replayWindowSeconds: 60 });
    elsewhere.clock.offset = 61_000;
    expect(await elsewhere.verify(jwt)).toMatchObject({ ok: false, reason: expect.stringMatching(/^replayed/) });
  });

  it("a token past its exp is refused even inside its replay window", async () => {
    const issuer = await TestIssuer.create();
    const { clock, token, verify } = setup(issuer, undefined, { replayWindowSeconds: 3600 });
    const jwt = await token();
    expect(await verify(jwt)).toMatchObject({ ok: true });
    clock.offset = 361_000; // exp (300 s) + leeway (60 s) passed
    expect(await verify(jwt)).toEqual({ ok: false, reason: "expired (exp)" });
  });
});
