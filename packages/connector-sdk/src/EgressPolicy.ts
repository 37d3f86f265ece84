import { type LookupAddress, type LookupAllOptions, type LookupOptions, lookup as systemLookup } from "node:dns";
import { BlockList, isIP } from "node:net";
import { Context, Data, Effect, Either, Layer } from "effect";
import { Agent, type Dispatcher } from "undici";
import { isPrivateAddress, isPrivateHostname, normalizeAddress } from "./privateAddresses.ts";

/** A request the egress policy does not let out; `message` says why, never with a response body. */
export class EgressRefused extends Data.TaggedError("EgressRefused")<{ readonly message: string }> {}

/** Tag check rather than instanceof: the refusal reaches us wrapped in fetch's TypeError cause. */
export const isEgressRefused = (e: unknown): e is EgressRefused =>
  typeof e === "object" && e !== null && (e as { _tag?: unknown })._tag === "EgressRefused";

/** The operator's exceptions to the policy: host names, addresses and CIDR ranges. */
export interface EgressAllowList {
  /** As written, for logs. */
  readonly entries: ReadonlyArray<string>;
  readonly hosts: ReadonlySet<string>;
  readonly ranges: BlockList;
}

const hostKey = (hostname: string) =>
  hostname
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "");

/**
 * Parses an allow-list: comma-separated host names (`localhost`, `erp.corp.example`; exact,
 * case-insensitive), IP addresses (`127.0.0.1`, `::1`) and CIDR ranges (`10.0.0.0/8`, `fd00::/8`).
 * Left is a one-line message naming the first bad entry.
 */
export const parseEgressAllowList = (value: string): Either.Either<EgressAllowList, string> => {
  const entries = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const hosts = new Set<string>();
  const ranges = new BlockList();
  for (const entry of entries) {
    const [address, prefixText, ...rest] = entry.split("/");
    const bare = (address as string).replace(/^\[|\]$/g, "");
    const family = isIP(bare);
    if (prefixText !== undefined) {
      const prefix = Number(prefixText);
      const max = family === 4 ? 32 : 128;
      if (family === 0 || rest.length > 0 || !/^\d{1,3}$/.test(prefixText) || prefix > max) {
        return Either.left(`"${entry}" is not a CIDR range (e.g. 10.0.0.0/8)`);
      }
      ranges.addSubnet(bare, prefix, family === 4 ? "ipv4" : "ipv6");
    } else if (family !== 0) {
      const normalized = normalizeAddress(bare);
      ranges.addAddress(normalized.address, normalized.family);
    } else if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$/i.test(entry)) {
      hosts.add(hostKey(entry));
    } else {
      return Either.left(`"${entry}" is neither a host name, an IP address nor a CIDR range`);
    }
  }
  return Either.right({ entries, hosts, ranges });
};

/** A resolver with `dns.lookup`'s `all: true` shape (tests give names without a DNS server). */
export type EgressResolver = (
  hostname: string,
  options: LookupAllOptions,
  callback: (error: NodeJS.ErrnoException | null, addresses: ReadonlyArray<LookupAddress>) => void,
) => void;

export interface EgressPolicyOptions {
  /** The operator's exceptions (`TANDEM_EGRESS_ALLOW`). Default: none. */
  readonly allow?: EgressAllowList;
  /** Default `dns.lookup`. */
  readonly resolver?: EgressResolver;
}

/**
 * Where outbound requests (connector HTTP, webhook deliveries, the LLM resolver) may go.
 * Tenants choose those URLs, so by default the public internet only: private, loopback,
 * link-local (cloud metadata), unspecified, multicast and reserved addresses are refused,
 * whatever the spelling (`0`, `2130706433`, `0x7f000001` and `[::ffff:127.0.0.1]` are all
 * loopback), unless the operator's allow-list names the host or covers the address.
 * It is checked twice: on the URL when it is saved and before each request (`refusal`), and on
 * every address DNS gives for a host name, inside the connection (`dispatcher`), so the checked
 * address is the one connected to and a name that re-resolves (DNS rebinding) cannot slip by.
 */
export interface EgressPolicyService {
  /** Why this URL must not be requested (judged without DNS), or undefined when it may be. */
  readonly refusal: (url: string) => string | undefined;
  /** The fetch dispatcher whose connections check each resolved address. */
  readonly dispatcher: Dispatcher;
  readonly allow: EgressAllowList;
}

const emptyAllowList: EgressAllowList = { entries: [], hosts: new Set(), ranges: new BlockList() };

const privateRefusal = "is a private, loopback, link-local or unspecified address, which the egress policy refuses";

export const makeEgressPolicy = (options: EgressPolicyOptions = {}): EgressPolicyService => {
  const allow = options.allow ?? emptyAllowList;
  const resolver: EgressResolver = options.resolver ?? ((host, opts, cb) => systemLookup(host, opts, cb));
  const allowedName = (hostname: string) => allow.hosts.has(hostKey(hostname));
  const allowedAddress = (address: string) => {
    if (!isPrivateAddress(address)) return true;
    const normalized = normalizeAddress(address);
    return allow.ranges.check(normalized.address, normalized.family);
  };

  const refusal = (url: string): string | undefined => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return "is not a valid URL";
    }
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return "must be an http or https URL";
    // WHATWG URL has already rewritten every IPv4 spelling (0, 2130706433, 0x7f000001, 127.1) to dotted form.
    const host = parsed.hostname;
    if (allowedName(host)) return undefined;
    if (isIP(host.replace(/^\[|\]$/g, "")) !== 0) return allowedAddress(host) ? undefined : privateRefusal;
    return isPrivateHostname(host) ? privateRefusal : undefined;
  };

  // Called by net/tls.connect for host names (never for IP literals, which `refusal` judges).
  // One private address among the answers refuses the whole name: a public name has no business
  // resolving into the operator's network, and connecting to "the other" address would be a guess.
  const lookup = (
    hostname: string,
    lookupOptions: LookupOptions,
    callback: (error: NodeJS.ErrnoException | null, address: string | Array<LookupAddress>, family?: number) => void,
  ): void => {
    resolver(hostname, { ...lookupOptions, all: true }, (error, addresses) => {
      if (error !== null) return callback(error, []);
      const first = addresses[0];
      if (first === undefined) return callback(Object.assign(new Error(`${hostname} has no address`)), []);
      if (!allowedName(hostname) && addresses.some((a) => !allowedAddress(a.address))) {
        return callback(
          new EgressRefused({ message: `${hostname} resolves to an address that ${privateRefusal}` }),
          [],
        );
      }
      if (lookupOptions.all === true) callback(null, [...addresses]);
      else callback(null, first.address, first.family);
    });
  };

  return { refusal, dispatcher: new Agent({ connect: { lookup } }), allow };
};

let strictPolicy: EgressPolicyService | undefined;

/** The policy without exceptions, built once (it owns a connection pool). */
export const strictEgressPolicy = (): EgressPolicyService => {
  strictPolicy ??= makeEgressPolicy();
  return strictPolicy;
};

/**
 * The process's egress policy. A reference with a default: a runtime that provides none gets
 * the strict policy, so forgetting to wire it refuses private addresses rather than allowing them.
 * The server provides one built from `TANDEM_EGRESS_ALLOW`.
 */
export class EgressPolicy extends Context.Reference<EgressPolicy>()("@tandem/core/EgressPolicy", {
  defaultValue: strictEgressPolicy,
}) {
  /** A policy with these options; its connection pool closes with the layer. */
  static layer(options: EgressPolicyOptions) {
    return Layer.scoped(
      EgressPolicy,
      Effect.acquireRelease(
        Effect.sync(() => makeEgressPolicy(options)),
        (policy) => Effect.promise(() => policy.dispatcher.close()),
      ),
    );
  }
}
