import * as pulumi from "@pulumi/pulumi";

/** What a component hands its children: itself as parent and whatever it waits on. */
export interface ChildOptions {
    readonly parent: pulumi.Resource;
    readonly dependsOn?: NonNullable<pulumi.ResourceOptions["dependsOn"]>;
}

/**
 * Children do not inherit a component's dependsOn: a component that waits on something
 * (the promotion gate, the previous batch) passes it down here, so its children wait on
 * it too and their state records the dependency.
 */
export function childOptions(parent: pulumi.Resource, opts?: pulumi.ComponentResourceOptions): ChildOptions {
    return { parent, ...(opts?.dependsOn ? { dependsOn: opts.dependsOn } : {}) };
}
