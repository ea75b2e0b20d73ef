import * as random from "@pulumi/random";
import { ReleaseRollout } from "./components/ReleaseRollout";
import { loadStackConfig, releaseAuthHeader, sshPrivateKey } from "./stacks/load";
import { deployHistory, deployImages, promotionGate } from "./stacks/promotion";
import { logBanner } from "./stacks/banner";

// Thin entry: validated config → components → stack outputs.
const config = loadStackConfig();
logBanner(config);
// Every resource waits for the promotion gate (stacks/promotion.ts): a refused version registers nothing.
const stackOptions = { protect: config.policy.protect, dependsOn: promotionGate(config) };

// Shared by every host so sessions stay valid behind a load balancer; encrypted in state.
const secretKey = new random.RandomPassword("app-secret-key", { length: 48, special: false }, stackOptions);

// Both modes: release mode runs artifacts, container mode images, behind the same proxy and activation.
const rollout = new ReleaseRollout(
    "complinist",
    { config, privateKey: sshPrivateKey(config), releaseAuth: releaseAuthHeader(config) ?? "", secretEnvironment: { SECRET_KEY: secretKey.result } },
    stackOptions,
);

export const deployedVersion = config.version;
export const rollbackVersion = config.rollbackVersion ?? null;
export const deployedAt = rollout.deployedAt;
export const deployedCommit = rollout.deployedCommit;
export const hosts = rollout.status;
// prod's record for the promotion gate: versions it ran healthy and versions it rolled back from.
export const { history, rolledBackFrom } = deployHistory(config, hosts);
export const releases = rollout.kept;
// Container mode: version → image pinned by digest, which the promotion gate of the next stack compares.
export const images = deployImages(config, rollout.kept, history);
