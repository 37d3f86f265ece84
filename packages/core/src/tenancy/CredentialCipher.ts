import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { Context, Data, Effect, Layer, Redacted } from "effect";

/** TANDEM_SECRET_KEY is not 32 bytes of hex or base64. */
export class InvalidSecretKey extends Data.TaggedError("InvalidSecretKey")<{ readonly message: string }> {}

/** A ciphertext was tampered with, truncated, or encrypted under another key. */
export class DecryptionFailed extends Data.TaggedError("DecryptionFailed")<{ readonly message: string }> {}

const VERSION = "v1";

/**
 * Parses the 256-bit key: 64 hex characters, or base64/base64url of 32 bytes.
 * Anything else is refused, so a typo never silently becomes a weaker key.
 */
export const parseSecretKey = (text: string): Effect.Effect<Buffer, InvalidSecretKey> => {
  const trimmed = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, "hex") : Buffer.from(trimmed, "base64url");
  return bytes.length === 32 && (/^[0-9a-fA-F]{64}$/.test(trimmed) || /^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed))
    ? Effect.succeed(bytes)
    : Effect.fail(
        new InvalidSecretKey({ message: "TANDEM_SECRET_KEY must be 32 bytes, as 64 hex characters or base64" }),
      );
};

/** A fresh key in the format parseSecretKey accepts. */
export const generateSecretKey = (): string => randomBytes(32).toString("base64url");

export interface CredentialCipherService {
  /** Encrypts `plaintext`, binding it to `context` (e.g. the connection id) as associated data. */
  readonly encrypt: (plaintext: string, context: string) => string;
  readonly decrypt: (envelope: string, context: string) => Effect.Effect<string, DecryptionFailed>;
}

/**
 * AES-256-GCM for credentials at rest. The envelope is `v1.<iv>.<tag>.<ciphertext>`
 * (base64url). The associated data ties a ciphertext to its row, so a ciphertext
 * copied onto another connection fails to decrypt instead of leaking there.
 */
export class CredentialCipher extends Context.Tag("@tandem/core/CredentialCipher")<
  CredentialCipher,
  CredentialCipherService
>() {
  static make(key: Redacted.Redacted<Buffer>): CredentialCipherService {
    const raw = Redacted.value(key);
    return {
      encrypt: (plaintext, context) => {
        const iv = randomBytes(12);
        const cipher = createCipheriv("aes-256-gcm", raw, iv);
        cipher.setAAD(Buffer.from(context));
        const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
        return [VERSION, iv, cipher.getAuthTag(), body]
          .map((p) => (typeof p === "string" ? p : p.toString("base64url")))
          .join(".");
      },
      decrypt: (envelope, context) =>
        Effect.try({
          try: () => {
            const [version, iv, tag, body] = envelope.split(".");
            if (version !== VERSION || iv === undefined || tag === undefined || body === undefined) {
              throw new Error("unknown envelope format");
            }
            const decipher = createDecipheriv("aes-256-gcm", raw, Buffer.from(iv, "base64url"));
            decipher.setAAD(Buffer.from(context));
            decipher.setAuthTag(Buffer.from(tag, "base64url"));
            return Buffer.concat([decipher.update(Buffer.from(body, "base64url")), decipher.final()]).toString("utf8");
          },
          catch: () =>
            new DecryptionFailed({ message: "credentials cannot be decrypted with the configured TANDEM_SECRET_KEY" }),
        }),
    };
  }

  static layer(key: Redacted.Redacted<Buffer>) {
    return Layer.succeed(CredentialCipher, CredentialCipher.make(key));
  }
}
