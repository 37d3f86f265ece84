export * from "./acmeConformanceFake.ts";
export * from "./businessCentralConformanceFake.ts";
export * from "./ConformanceFake.ts";
export * from "./describeConnector.ts";
export * from "./hubSpotConformanceFake.ts";
export * from "./salesforceConformanceFake.ts";
