/** A plugin connector whose acknowledgement throws: the engine must answer its default receipt. */
import { defineConnector } from "@tandem/core";
import { acmeConnector } from "@tandem/testkit";

export default defineConnector({
  ...acmeConnector,
  name: "acme-acknowledging-broken",
  webhooks: {
    ...acmeConnector.webhooks!,
    acknowledge: () => {
      throw new Error("acknowledgement template failed");
    },
  },
});
