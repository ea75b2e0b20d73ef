import * as path from "path";

/**
 * The checkout's root (package.json, Pulumi.yaml, agent/, app/, scripts/*.sh). This file is
 * toolchain/checkout.ts in the sources (ts-node: tests, npm run bench) and dist/toolchain/checkout.js
 * in tsc's output (the operator commands, toolchain/dist.cjs), one directory deeper: every path
 * into the checkout starts here, never at a module's own __dirname.
 */
export const CHECKOUT_DIR = path.resolve(__dirname, "..", ...(path.extname(__filename) === ".js" ? [".."] : []));
