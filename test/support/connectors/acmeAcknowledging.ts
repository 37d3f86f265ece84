/**
 * A plugin connector for the acknowledgement test: Acme CRM, whose vendor expects an XML
 * acknowledgement naming the stored events (as Salesforce's Outbound Messages expect a SOAP Ack).
 */
import { defineConnector } from "@tandem/core";
import { acmeConnector } from "@tandem/testkit";

export default defineConnector({
  ...acmeConnector,
  name: "acme-acknowledging",
  webhooks: {
    ...acmeConnector.webhooks!,
    acknowledge: (receipt) => ({
      status: 200,
      contentType: "text/xml; charset=utf-8",
      body: `<Ack accepted="${receipt.accepted}" duplicates="${receipt.duplicates}">true</Ack>`,
    }),
  },
});
