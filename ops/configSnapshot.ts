import type { ConfigMap, ConfigValue } from "@pulumi/pulumi/automation";

/**
 * A stack whose config reads cost one CLI process in all: the first read runs `getAllConfig`
 * (`pulumi config --json --show-secrets`), and every `getConfig` after it is answered from that
 * answer until the command writes config (set, set-all, remove), which drops it. Without this, each
 * `getConfig` is a `pulumi config get` process of its own (the rollback read four keys and the
 * webhook: five processes). Path keys (`complinist:notify.webhookUrl` with path) are looked up in
 * the structured value; a path this does not parse (brackets, quotes) goes to the CLI.
 */
export interface ConfigStack {
    getConfig(key: string, path?: boolean): Promise<ConfigValue>;
    getAllConfig(): Promise<ConfigMap>;
    setConfig(key: string, value: ConfigValue, path?: boolean): Promise<void>;
    setAllConfig(config: ConfigMap, path?: boolean): Promise<void>;
    removeConfig(key: string, path?: boolean): Promise<void>;
}

/** The value at `key` in `all`, as `pulumi config get [--path] --json` gives it; undefined when not set. */
export function lookUp(all: ConfigMap, key: string, path = false): ConfigValue | undefined {
    if (!path || !key.includes(".", key.indexOf(":") + 1)) return all[key];
    const [top, ...rest] = key.split(".") as [string, ...string[]];
    const entry = all[top];
    if (entry === undefined) return undefined;
    let node: unknown;
    try {
        node = JSON.parse(entry.value);
    } catch {
        return undefined;
    }
    for (const part of rest) {
        if (node === null || typeof node !== "object" || Array.isArray(node) || !Object.prototype.hasOwnProperty.call(node, part)) return undefined;
        node = (node as Record<string, unknown>)[part];
    }
    return { value: typeof node === "string" ? node : JSON.stringify(node), ...(entry.secret === undefined ? {} : { secret: entry.secret }) };
}

/** `stack` with its config reads served from one snapshot (see ConfigStack); every other member is the stack's own. */
export function withConfigSnapshot<S extends ConfigStack>(stack: S): S {
    let snapshot: Promise<ConfigMap> | undefined;
    const drop = <A extends unknown[]>(write: (...args: A) => Promise<void>) =>
        async (...args: A): Promise<void> => {
            snapshot = undefined;
            await write(...args);
        };
    const own: Partial<ConfigStack> = {
        getAllConfig: () => {
            snapshot ??= stack.getAllConfig().catch((e: unknown) => {
                snapshot = undefined;
                throw e;
            });
            return snapshot;
        },
        getConfig: async (key, path) => {
            if (path === true && /[[\]"]/.test(key)) return stack.getConfig(key, path);
            const v = lookUp(await (own.getAllConfig as () => Promise<ConfigMap>)(), key, path === true);
            if (v === undefined) throw new Error(`configuration key '${key}' not found for stack`);
            return v;
        },
        setConfig: drop((key: string, value: ConfigValue, path?: boolean) => stack.setConfig(key, value, path)),
        setAllConfig: drop((config: ConfigMap, path?: boolean) => stack.setAllConfig(config, path)),
        removeConfig: drop((key: string, path?: boolean) => stack.removeConfig(key, path)),
    };
    return new Proxy(stack, {
        get(target, prop, receiver) {
            if (typeof prop === "string" && prop in own) return own[prop as keyof ConfigStack];
            const v: unknown = Reflect.get(target, prop, receiver);
            return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
    });
}
