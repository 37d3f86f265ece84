import { acmeConnector } from "@tandem/testkit";
import { acmeConformanceFake, describeConnector } from "@tandem/testkit/conformance";

// The acme connector is the in-repo template (async style); the suite must pass for it as for third parties.
describeConnector(acmeConnector, acmeConformanceFake());
