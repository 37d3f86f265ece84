import type { Scenario } from "../Scenario.ts";
import { delta } from "./delta.ts";
import { initialImport } from "./initialImport.ts";
import { push } from "./push.ts";
import { queue } from "./queue.ts";
import { reconcile } from "./reconcile.ts";
import { webhookIngest } from "./webhookIngest.ts";

/** Every scenario, in the order `pnpm bench` runs them. */
export const scenarios: ReadonlyArray<Scenario> = [initialImport, delta, reconcile, webhookIngest, queue, push];
