import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { constantTimeEqual, hmacDigest } from "../src/index.ts";

// RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
const rfc4231 = { key: "Jefe", data: "what do ya want for nothing?" };

describe("hmacDigest", () => {
  it("is HMAC-SHA256 in hex by default (RFC 4231 test case 2)", () => {
    expect(hmacDigest(rfc4231.key, rfc4231.data)).toBe(
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    );
  });

  it("writes base64 and other algorithms when asked", () => {
    expect(hmacDigest(rfc4231.key, rfc4231.data, { encoding: "base64" })).toBe(
      Buffer.from("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", "hex").toString("base64"),
    );
    expect(hmacDigest(rfc4231.key, rfc4231.data, { algorithm: "sha512" })).toBe(
      "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
    );
  });

  it("hashes the payload as UTF-8 (as vendors sign raw bodies), not Latin-1", () => {
    const utf8Bytes = createHmac("sha256", "k")
      .update(Buffer.from([0xc3, 0xa9]))
      .digest("hex");
    const latin1Bytes = createHmac("sha256", "k")
      .update(Buffer.from([0xe9]))
      .digest("hex");
    expect(hmacDigest("k", "é")).toBe(utf8Bytes);
    expect(hmacDigest("k", "é")).not.toBe(latin1Bytes);
  });
});

describe("constantTimeEqual", () => {
  it("is true for equal strings only", () => {
    expect(constantTimeEqual("sig-abc", "sig-abc")).toBe(true);
    expect(constantTimeEqual("", "")).toBe(true);
    expect(constantTimeEqual("sig-abc", "sig-abd")).toBe(false);
    expect(constantTimeEqual("sig-abc", "SIG-ABC")).toBe(false);
  });

  it("answers false (does not throw) when the lengths differ", () => {
    expect(constantTimeEqual("sig-abc", "sig-ab")).toBe(false);
    expect(constantTimeEqual("sig-abc", "")).toBe(false);
    expect(constantTimeEqual("", "sig-abc")).toBe(false);
  });
});
