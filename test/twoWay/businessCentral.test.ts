import { describeTwoWayMatrix } from "./matrix.ts";
import { businessCentralVendor } from "./vendors/businessCentral.ts";

describeTwoWayMatrix(businessCentralVendor);
