import { describe, expect, it } from "@effect/vitest";
import { CredentialCipher, generateSecretKey, parseSecretKey } from "@tandem/core";
import { Effect, Redacted } from "effect";

const cipherWith = (key: string) =>
  Effect.map(parseSecretKey(key), (bytes) => CredentialCipher.make(Redacted.make(bytes)));

describe("CredentialCipher", () => {
  it.effect("round-trips, and never leaves the plaintext in the envelope", () =>
    Effect.gen(function* () {
      const cipher = yield* cipherWith(generateSecretKey());
      const envelope = cipher.encrypt('{"token":"s3cret-value"}', "connection:t:1");
      expect(envelope).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
      expect(envelope).not.toContain("s3cret");
      expect(yield* cipher.decrypt(envelope, "connection:t:1")).toBe('{"token":"s3cret-value"}');
    }),
  );

  it.effect("uses a fresh IV each time", () =>
    Effect.gen(function* () {
      const cipher = yield* cipherWith(generateSecretKey());
      expect(cipher.encrypt("same", "c")).not.toBe(cipher.encrypt("same", "c"));
    }),
  );

  it.effect("refuses a ciphertext moved to another row, tampered with, or read with another key", () =>
    Effect.gen(function* () {
      const cipher = yield* cipherWith(generateSecretKey());
      const other = yield* cipherWith(generateSecretKey());
      const envelope = cipher.encrypt("secret", "connection:t:1");
      const [v, iv, tag, body] = envelope.split(".");
      const flipped = `${v}.${iv}.${tag}.${body?.startsWith("A") ? `B${body.slice(1)}` : `A${body?.slice(1)}`}`;
      for (const attempt of [
        cipher.decrypt(envelope, "connection:t:2"),
        cipher.decrypt(flipped, "connection:t:1"),
        other.decrypt(envelope, "connection:t:1"),
        cipher.decrypt("garbage", "connection:t:1"),
      ]) {
        const error = yield* Effect.flip(attempt);
        expect(error._tag).toBe("DecryptionFailed");
      }
    }),
  );

  it.effect("accepts 64 hex characters or base64 of 32 bytes, and nothing else", () =>
    Effect.gen(function* () {
      expect((yield* parseSecretKey("ab".repeat(32))).length).toBe(32);
      expect((yield* parseSecretKey(Buffer.alloc(32, 7).toString("base64"))).length).toBe(32);
      expect((yield* parseSecretKey(generateSecretKey())).length).toBe(32);
      for (const bad of ["", "short", "ab".repeat(31), Buffer.alloc(16).toString("base64"), "zz".repeat(32)]) {
        const error = yield* Effect.flip(parseSecretKey(bad));
        expect(error.message).toBe("TANDEM_SECRET_KEY must be 32 bytes, as 64 hex characters or base64");
      }
    }),
  );
});
