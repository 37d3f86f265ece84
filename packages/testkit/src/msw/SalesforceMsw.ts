import type { SalesforceFake } from "@tandem/sandbox";
import { http } from "msw";
import { forwardToFake } from "./forwardToFake.ts";

/**
 * MSW handlers answering every request under the fake's instance URL, and token requests on its
 * login URL when that is another origin (login.salesforce.com, test.salesforce.com).
 *
 * @example
 * const fake = createSalesforceFake({ instanceUrl: "https://acme.my.salesforce.test" });
 * const server = setupServer(...salesforceHandlers(fake));
 */
export const salesforceHandlers = (fake: SalesforceFake) => [
  http.all(`${fake.instanceUrl}/*`, forwardToFake(fake.handle)),
  ...(fake.loginUrl !== fake.instanceUrl
    ? [http.post(`${fake.loginUrl}/services/oauth2/token`, forwardToFake(fake.handle))]
    : []),
];
