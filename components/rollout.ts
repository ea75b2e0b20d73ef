import * as pulumi from "@pulumi/pulumi";
import type { HostTarget } from "../infra/providers/host";
import type { FleetPlan } from "../infra/providers/activation";
import { batches } from "../stacks/config";

/** What a host reports after its rollout step: the version, whether it is healthy, and the error-rate watch's figures of its last activation. */
export type HostStatus = { version: string; healthy: boolean; watch: string };

/**
 * The batch wiring shared by both rollout components: hosts in config order,
 * `size` per batch, every host of batch N+1 built with the gates of batch N
 * (its activation or its container) as `after`, so nothing on it changes until
 * the previous batch is healthy.
 */
export function deployInBatches<H extends { readonly name: string }, D>(
    hosts: ReadonlyArray<H>,
    size: number,
    build: (host: H, after: pulumi.Resource[]) => D,
    gateOf: (deployment: D) => pulumi.Resource,
): Record<string, D> {
    const out: Record<string, D> = {};
    let previous: pulumi.Resource[] = [];
    for (const batch of batches(hosts, size)) {
        const built = batch.map((h) => {
            const d = build(h, previous);
            out[h.name] = d;
            return d;
        });
        previous = built.map(gateOf);
    }
    return out;
}

/** `{ <host>: { version, healthy, watch } }` for the `hosts` stack output. */
export function statusByHost(hosts: Readonly<Record<string, { readonly status: pulumi.Output<HostStatus> }>>): pulumi.Output<Record<string, HostStatus>> {
    const names = Object.keys(hosts);
    return pulumi.all(names.map((n) => (hosts[n] as { status: pulumi.Output<HostStatus> }).status)).apply((s) => Object.fromEntries(names.map((n, i) => [n, s[i] as HostStatus])));
}

/**
 * Pure: what a failed activation on `name` does to the rest of the fleet. With `rollback-all`, the
 * hosts of the earlier batches and of its own batch (which may have switched meanwhile) are its
 * peers, switched back to their warm standby; the later batches' hosts were never touched. With
 * `halt`, nobody else is touched.
 */
export function fleetAround<H extends Omit<HostTarget, "hostKey"> & { readonly hostKey?: string | undefined }>(
    hosts: ReadonlyArray<H>,
    size: number,
    name: string,
    onFailure: FleetPlan["onFailure"],
): FleetPlan {
    const groups = batches(hosts, size);
    const at = groups.findIndex((b) => b.some((h) => h.name === name));
    if (at < 0) throw new Error(`host ${name} is not in the rollout`);
    const peers = groups
        .slice(0, at + 1)
        .flat()
        .filter((h) => h.name !== name)
        // The schema requires hostKey for every host.
        .map((h): HostTarget => ({ name: h.name, address: h.address, port: h.port, user: h.user, hostKey: h.hostKey as string }));
    const later = groups.slice(at + 1).flat().map((h) => h.name);
    return onFailure === "halt" ? { onFailure, peers: [], later } : { onFailure, peers, later };
}
