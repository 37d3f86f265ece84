import { describeConnector, salesforceConformanceFake } from "@tandem/testkit/conformance";
import salesforce from "../src/index.ts";

describeConnector(salesforce, salesforceConformanceFake());
