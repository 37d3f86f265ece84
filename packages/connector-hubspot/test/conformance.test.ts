import { describeConnector, hubSpotConformanceFake } from "@tandem/testkit/conformance";
import hubspot from "../src/index.ts";

describeConnector(hubspot, hubSpotConformanceFake());
