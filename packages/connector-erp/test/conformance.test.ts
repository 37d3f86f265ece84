import { businessCentralConformanceFake, describeConnector } from "@tandem/testkit/conformance";
import erp from "../src/index.ts";

describeConnector(erp, businessCentralConformanceFake());
