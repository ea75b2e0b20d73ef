import { ReleaseRollout } from "./components/ReleaseRollout";
import { GeneratedSecret } from "./infra/providers/generatedSecret";
import { loadStackConfig, releaseAuthHeader, sshPrivateKey } from "./stacks/load";
import { deployHistory, deployImages, promotionGate } from "./stacks/promotion";
import { logBanner } from "./stacks/banner";

/**
 * The program: validated config → components → stack outputs. One function, two entry points
 * that run it unchanged: `pulumi up` with the official CLI (its Node.js language host calls a
 * module whose export is a function), and every npm script and test, which run it inline
 * through the Automation API (scripts/engine.ts).
 */
async function complinist() {
    const config = loadStackConfig();
    logBanner(config);
    // Every resource waits for the promotion gate (stacks/promotion.ts): a refused version registers nothing.
    const stackOptions = { protect: config.policy.protect, dependsOn: promotionGate(config) };

    // Shared by every host so sessions stay valid behind a load balancer; made once, encrypted in state.
    const secretKey = new GeneratedSecret("app-secret-key", { length: 48, alphabet: "alphanumeric" }, stackOptions);

    // Both modes: release mode runs artifacts, container mode images, behind the same proxy and activation.
    const rollout = new ReleaseRollout(
        "complinist",
        { config, privateKey: sshPrivateKey(config), releaseAuth: releaseAuthHeader(config) ?? "", secretEnvironment: { SECRET_KEY: secretKey.value } },
        stackOptions,
    );
    // prod's record for the promotion gate: versions it ran healthy and versions it rolled back from.
    const { history, rolledBackFrom } = deployHistory(config, rollout.status);
    return {
        deployedVersion: config.version,
        rollbackVersion: config.rollbackVersion ?? null,
        deployedAt: rollout.deployedAt,
        deployedCommit: rollout.deployedCommit,
        hosts: rollout.status,
        history,
        rolledBackFrom,
        releases: rollout.kept,
        // Container mode: version → image pinned by digest, which the promotion gate of the next stack compares.
        images: deployImages(config, rollout.kept, history),
    };
}

export = complinist;
