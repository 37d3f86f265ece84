import { type ConnectorError, defineConnector, defineEntity, NotFound } from "@tandem/core";
import { type AcmeContact, acmeConnector, acmeEffectConnector } from "@tandem/testkit";
import { acmeConformanceFake, describeConnector } from "@tandem/testkit/conformance";
import { Effect, Option, Redacted, Stream } from "effect";

// The acme connector is the in-repo template (async style); the suite must pass for it as for third parties.
describeConnector(acmeConnector, acmeConformanceFake());

/*
 * The Effect style, checked by the same suite: acmeEffectConnector's read and get, completed
 * with an Effect `readIds` and `write.update` (the engine's own tests need the original without
 * them), so every member the suite calls is an Effect or a Stream.
 */
const { contacts } = acmeEffectConnector.entities;
const call = <A>(request: () => Promise<A>) => Effect.tryPromise({ try: request, catch: (e) => e as ConnectorError });
const auth = (token: Redacted.Redacted<string>) => ({ authorization: `Bearer ${Redacted.value(token)}` });

const acmeEffectComplete = defineConnector({
  ...acmeEffectConnector,
  name: "acme-crm-effect-complete",
  webhooks: acmeConnector.webhooks,
  entities: {
    contacts: defineEntity<AcmeContact, typeof acmeEffectConnector.config.Type>({
      ...contacts,
      readIds: (ctx) =>
        Stream.paginateEffect(undefined as string | undefined, (cursor) =>
          Effect.map(
            call(() =>
              ctx.http.request({
                url: `${ctx.config.baseUrl}/contacts/ids`,
                headers: auth(ctx.config.token),
                query: { limit: 10, cursor },
              }),
            ),
            (response) => {
              const body = response.body as { ids: Array<string>; nextCursor: string | null };
              return [body.ids, Option.fromNullable(body.nextCursor)] as const;
            },
          ),
        ),
      write: {
        update: (ctx, id, changes) =>
          Effect.flatMap(
            call(() =>
              ctx.http.request({
                method: "PATCH",
                url: `${ctx.config.baseUrl}/contacts/${encodeURIComponent(id)}`,
                headers: auth(ctx.config.token),
                body: changes,
              }),
            ),
            (response) =>
              response.status === 404
                ? Effect.fail(new NotFound({ externalId: id }))
                : Effect.succeed(response.body as AcmeContact),
          ),
      },
      deletes: "reconcile",
    }),
  },
});

describeConnector(acmeEffectComplete, acmeConformanceFake());
