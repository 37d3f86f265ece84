import {
  EgressPolicy,
  type EgressPolicyService,
  makeEgressPolicy,
  parseEgressAllowList,
} from "@tandem/connector-sdk/runtime";
import { Either } from "effect";

/**
 * The egress allow-list of tests: the fakes listen on loopback, which the egress policy
 * refuses by default. As `TANDEM_EGRESS_ALLOW` for a server started from env.
 */
export const loopbackEgressAllow = "127.0.0.1,::1,localhost";

const allow = Either.getOrThrow(parseEgressAllowList(loopbackEgressAllow));

/** The egress options that let requests reach the loopback fakes, for an engine's configuration. */
export const loopbackEgressOptions = { allow } as const;

/** An egress policy that lets requests reach the loopback fakes (and nothing else private), for `makeConnectorHttp`. */
export const makeLoopbackEgressPolicy = (): EgressPolicyService => makeEgressPolicy({ allow });

/** The same policy as a layer, for a service graph. */
export const loopbackEgressPolicy = EgressPolicy.layer({ allow });
