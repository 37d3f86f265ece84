import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Either } from "effect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EgressResolver, makeConnectorHttp, makeEgressPolicy, parseEgressAllowList } from "../src/runtime.ts";

/*
 * The check at connection time: a public-looking name whose DNS answer is private. No MSW here
 * (it replaces fetch and would bypass the connection); a real server on loopback plays the
 * internal service, and a resolver stands in for DNS, as a rebinding attacker's would answer.
 */

let hits = 0;
const internal = createServer((_req, res) => {
  hits++;
  res.end("INTERNAL-ONLY-BODY");
});
let port = 0;
beforeAll(async () => {
  await new Promise<void>((r) => internal.listen(0, "127.0.0.1", r));
  port = (internal.address() as AddressInfo).port;
});
afterAll(() => internal.close());

const resolvingTo =
  (...addresses: ReadonlyArray<string>): EgressResolver =>
  (_host, _options, callback) =>
    callback(
      null,
      addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 })),
    );

const allow = (list: string) => Either.getOrThrow(parseEgressAllowList(list));

const get = (policy: ReturnType<typeof makeEgressPolicy>, host = "api.vendor.example") =>
  makeConnectorHttp({ timeoutMs: 5_000, egress: policy }).request({ url: `http://${host}:${port}/` });

describe("the egress policy at connection time", () => {
  it("refuses a host name that resolves to loopback, and never connects", async () => {
    hits = 0;
    await expect(get(makeEgressPolicy({ resolver: resolvingTo("127.0.0.1") }))).rejects.toMatchObject({
      _tag: "EgressRefused",
      message: expect.stringContaining("api.vendor.example resolves to an address"),
    });
    // One private answer among public ones refuses the name too.
    await expect(
      get(makeEgressPolicy({ resolver: resolvingTo("93.184.215.14", "::ffff:127.0.0.1") })),
    ).rejects.toMatchObject({ _tag: "EgressRefused" });
    expect(hits).toBe(0);
  });

  it("connects to the checked address when the allow-list covers it, by range or by name", async () => {
    hits = 0;
    const byRange = makeEgressPolicy({ resolver: resolvingTo("127.0.0.1"), allow: allow("127.0.0.0/8") });
    expect(await get(byRange)).toMatchObject({ status: 200, body: "INTERNAL-ONLY-BODY" });
    const byName = makeEgressPolicy({ resolver: resolvingTo("127.0.0.1"), allow: allow("api.vendor.example") });
    expect((await get(byName)).status).toBe(200);
    expect(hits).toBe(2);
    await byRange.dispatcher.close();
    await byName.dispatcher.close();
  });

  it("judges URLs without DNS: every private spelling refused, public hosts and allowed entries pass", () => {
    const strict = makeEgressPolicy();
    for (const url of [
      "http://0/",
      "http://127.1/",
      "http://2130706433/",
      "http://0x7f000001/",
      "http://[::ffff:a9fe:a9fe]/",
      "http://[::]/",
      "http://100.100.100.200/",
      "http://192.168.1.1/",
      "http://[fe80::1]/",
      "http://LOCALHOST./",
      "http://metadata.google.internal/",
      "file:///etc/passwd",
      "not a url",
    ]) {
      expect([url, strict.refusal(url)]).toEqual([url, expect.any(String)]);
    }
    for (const url of ["https://api.hubapi.com/", "http://8.8.8.8/", "http://[2606:4700:4700::1111]/"]) {
      expect([url, strict.refusal(url)]).toEqual([url, undefined]);
    }
    const allowed = makeEgressPolicy({ allow: allow("10.0.0.0/8, ::1, localhost") });
    expect(allowed.refusal("http://10.1.2.3:8080/")).toBeUndefined();
    expect(allowed.refusal("http://[::1]/")).toBeUndefined();
    expect(allowed.refusal("http://localhost:3000/")).toBeUndefined();
    expect(allowed.refusal("http://192.168.0.1/")).toEqual(expect.any(String));
  });

  it("parses the allow-list, naming a bad entry", () => {
    expect(Either.getOrThrow(parseEgressAllowList(" 127.0.0.1 , fd00::/8,erp.corp.example ")).entries).toEqual([
      "127.0.0.1",
      "fd00::/8",
      "erp.corp.example",
    ]);
    expect(parseEgressAllowList("10.0.0.0/33")).toEqual(
      Either.left('"10.0.0.0/33" is not a CIDR range (e.g. 10.0.0.0/8)'),
    );
    expect(parseEgressAllowList("127.0.0.1,bad host!")).toEqual(
      Either.left('"bad host!" is neither a host name, an IP address nor a CIDR range'),
    );
  });
});
