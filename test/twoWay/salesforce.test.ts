import { describeTwoWayMatrix } from "./matrix.ts";
import { salesforceVendor } from "./vendors/salesforce.ts";

describeTwoWayMatrix(salesforceVendor);
