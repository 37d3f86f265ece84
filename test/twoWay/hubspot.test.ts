import { describeTwoWayMatrix } from "./matrix.ts";
import { hubspotVendor } from "./vendors/hubspot.ts";

describeTwoWayMatrix(hubspotVendor);
