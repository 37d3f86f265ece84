import type { Scenario } from "../Scenario.ts";
import { initialImport } from "./initialImport.ts";

/** Every scenario, in the order `pnpm bench` runs them. */
export const scenarios: ReadonlyArray<Scenario> = [initialImport];
