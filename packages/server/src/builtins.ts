import erp from "@tandem/connector-erp";
import hubspot from "@tandem/connector-hubspot";
import salesforce from "@tandem/connector-salesforce";
import type { AnyConnector } from "@tandem/core";

/** The connectors every Tandem process has, whatever TANDEM_CONNECTORS says. */
export const builtinConnectors: ReadonlyArray<AnyConnector> = [hubspot, salesforce, erp];
