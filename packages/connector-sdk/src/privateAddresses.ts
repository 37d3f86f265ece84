import { BlockList, isIP } from "node:net";

/*
 * The addresses a tenant-given URL must not reach: anything that is not the public
 * internet. A tenant who could point a connector or a webhook at them would make our
 * process a proxy into the operator's network (cloud metadata, the database port,
 * admin APIs on loopback), with the tenant's stored token attached.
 */

const blocked = new BlockList();
// IPv4: RFC 6890 special-purpose ranges that are not globally reachable.
for (const [net, prefix] of [
  ["0.0.0.0", 8], // "this network": 0.0.0.0 reaches loopback on Linux
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT (Alibaba's metadata is 100.100.100.200)
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local: AWS/GCP/Azure metadata at 169.254.169.254
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, and the broadcast address
] as const) {
  blocked.addSubnet(net, prefix, "ipv4");
}
// IPv6. ::/96 covers :: (unspecified), ::1 (loopback) and the deprecated IPv4-compatible form.
for (const [net, prefix] of [
  ["::", 96],
  ["fc00::", 7], // unique local (AWS's IPv6 metadata is fd00:ec2::254)
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated, still routed by some stacks)
  ["ff00::", 8], // multicast
] as const) {
  blocked.addSubnet(net, prefix, "ipv6");
}

/**
 * The IPv4 address an IPv6 address stands for, when it embeds one: IPv4-mapped
 * (`::ffff:127.0.0.1`, which WHATWG URL writes `[::ffff:7f00:1]`) or NAT64 (`64:ff9b::/96`).
 * Such an address reaches the IPv4 host, so it is judged as that host.
 */
const embeddedIPv4 = (address: string): string | undefined => {
  const match = /^(?:0{0,4}:){0,5}(?:::)?ffff:(.+)$/i.exec(address) ?? /^64:ff9b::(.+)$/i.exec(address);
  if (match === null) return undefined;
  const tail = match[1] as string;
  if (isIP(tail) === 4) return tail;
  const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(tail);
  if (hex === null) return undefined;
  const high = Number.parseInt(hex[1] as string, 16);
  const low = Number.parseInt(hex[2] as string, 16);
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join(".");
};

/** An IP address as BlockList judges it: family, and the IPv4 address an IPv6 one embeds. */
export const normalizeAddress = (address: string): { readonly address: string; readonly family: "ipv4" | "ipv6" } => {
  const bare = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  if (isIP(bare) === 4) return { address: bare, family: "ipv4" };
  const v4 = embeddedIPv4(bare);
  return v4 === undefined ? { address: bare.toLowerCase(), family: "ipv6" } : { address: v4, family: "ipv4" };
};

/** Whether an IP address (either family, brackets allowed) is private, loopback, link-local, unspecified or reserved. */
export const isPrivateAddress = (address: string): boolean => {
  const { address: normalized, family } = normalizeAddress(address);
  return blocked.check(normalized, family);
};

/**
 * Names that mean this machine or the cloud's metadata service whatever DNS says:
 * `localhost` and `*.localhost` (RFC 6761), and GCP's metadata name. Refused before any
 * lookup, so a URL with them fails at creation, not only when a request is made.
 */
export const isPrivateHostname = (hostname: string): boolean => {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  return name === "localhost" || name.endsWith(".localhost") || name === "metadata.google.internal";
};
