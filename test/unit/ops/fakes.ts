// Test doubles shared by the operator helpers' tests: a Stack with just the methods the helpers may
// use, recording every call, and an operator terminal that records what it is told.
import type { ConfigMap, ConfigValue, EngineEvent, OpType, OutputMap } from "@pulumi/pulumi/automation";
import type { Reporting } from "../../../ops/deploy";
import type { DeployEvent } from "../../../ops/notify";
import type { OperatorIo } from "../../../ops/operator";
import type { RollbackStack } from "../../../ops/rollbackPlan";

export interface FakeOptions {
    config?: Record<string, string>;
    outputs?: Record<string, unknown>;
    previewError?: string;
    upError?: string;
    upResult?: string;
    /** Config writes (a set or a set-all each) that succeed before every later one fails. */
    setConfigFailsAfter?: number;
    /** With upError: the update fails during its refresh, before any step that changes a host (default: after one). */
    upFailsBeforeChanges?: boolean;
    /** The `hosts` output of a successful up (default: every host healthy on the version, with WATCH_FIGURES). */
    upHosts?: Record<string, unknown>;
}

/** What a host's error-rate watch reports of an activation with a 10% canary of 60 s (the `hosts` output's `watch`). */
export const WATCH_FIGURES =
    "10% canary 60s of 60s: new 612 requests 0 errors (0.00%), previous 5490 requests 0 errors (0.00%); limit 1.00% (10 x previous, maxErrorRatio); minRequests 20";

/**
 * Just the methods the helper may use, recording every call. Anything else does not exist on it, so
 * an unexpected call fails to compile; getConfig rejects for an unset key as the CLI does.
 */
export class FakeStack implements RollbackStack {
    readonly name = "prod";
    readonly calls: string[] = [];
    readonly config: Record<string, string>;
    private sets = 0;
    constructor(private readonly o: FakeOptions = {}) {
        this.config = {
            "complinist:version": "1.1.0",
            "complinist:rollbackVersion": "1.0.0",
            "complinist:keepReleases": "3",
            "complinist:releases": JSON.stringify({ "0.9.0": {}, "1.0.0": {}, "1.1.0": {}, "1.2.0": {} }),
            "complinist:hosts": JSON.stringify([{ name: "prod-1" }, { name: "prod-2" }]),
            ...(o.config ?? {}),
        };
    }
    async getConfig(key: string): Promise<ConfigValue> {
        this.calls.push(`get ${key}`);
        const value = this.config[key];
        if (value === undefined) throw new Error(`code: 255\n stderr: error: configuration key '${key}' not found for stack '${this.name}'`);
        return { value, secret: false };
    }
    async getAllConfig(): Promise<ConfigMap> {
        this.calls.push("getAll");
        return Object.fromEntries(Object.entries(this.config).map(([k, value]) => [k, { value, secret: false }]));
    }
    async setAllConfig(config: ConfigMap): Promise<void> {
        this.calls.push(`setAll ${Object.entries(config).map(([k, v]) => `${k}=${v.value}`).join(" ")}`);
        this.sets++;
        if (this.o.setConfigFailsAfter !== undefined && this.sets > this.o.setConfigFailsAfter) throw new Error("Pulumi.prod.yaml is read-only");
        for (const [k, v] of Object.entries(config)) this.config[k] = v.value;
    }
    async setConfig(key: string, value: ConfigValue): Promise<void> {
        this.calls.push(`set ${key}=${value.value}`);
        this.sets++;
        if (this.o.setConfigFailsAfter !== undefined && this.sets > this.o.setConfigFailsAfter) throw new Error("Pulumi.prod.yaml is read-only");
        this.config[key] = value.value;
    }
    async removeConfig(key: string): Promise<void> {
        this.calls.push(`rm ${key}`);
        delete this.config[key];
    }
    async outputs(): Promise<OutputMap> {
        this.calls.push("outputs");
        const outs = this.o.outputs ?? { deployedVersion: "1.1.0", rollbackVersion: "1.0.0", releases: ["1.1.0", "1.0.0", "1.2.0"] };
        return Object.fromEntries(Object.entries(outs).map(([k, value]) => [k, { value, secret: false }]));
    }
    async preview(opts?: { diff?: boolean; onOutput?: (out: string) => void }) {
        this.calls.push(`preview diff=${String(opts?.diff)} version=${this.config["complinist:version"]}`);
        opts?.onOutput?.("~ complinist-prod-1-activation-switch update [diff: ~version]\n");
        if (this.o.previewError) throw new Error(this.o.previewError);
        return { changeSummary: { update: 2, same: 10 } };
    }
    async up(opts?: { onOutput?: (out: string) => void; onEvent?: (event: EngineEvent) => void }) {
        this.calls.push(`up version=${this.config["complinist:version"]}`);
        opts?.onOutput?.("Updating (prod)\n");
        const step = (op: OpType) => opts?.onEvent?.({ sequence: 0, timestamp: 0, resourcePreEvent: { metadata: { op, urn: "urn:pulumi:prod::complinist::x::prod-1-activation-switch", type: "x", provider: "" } } } as EngineEvent);
        step("refresh");
        if (this.o.upError && this.o.upFailsBeforeChanges) throw new Error(this.o.upError);
        step("update");
        if (this.o.upError) throw new Error(this.o.upError);
        const v = this.config["complinist:version"];
        return {
            summary: { result: this.o.upResult ?? "succeeded" },
            outputs: {
                deployedVersion: { value: v, secret: false },
                hosts: { value: this.o.upHosts ?? { "prod-1": { version: v, healthy: true, watch: WATCH_FIGURES }, "prod-2": { version: v, healthy: true, watch: WATCH_FIGURES } }, secret: false },
                deployedAt: { value: "2025-01-01T00:00:00.000Z", secret: false },
                deployedCommit: { value: "abc123", secret: false },
            },
        };
    }
    /** The calls that change something or run the engine. */
    get actions(): string[] {
        return this.calls.filter((c) => !c.startsWith("get ") && c !== "getAll" && c !== "outputs");
    }
}

export class FakeIo implements OperatorIo {
    readonly lines: string[] = [];
    readonly errors: string[] = [];
    readonly questions: string[] = [];
    streamed = "";
    constructor(
        readonly interactive: boolean,
        private readonly answer = true,
    ) {}
    async confirm(q: string): Promise<boolean> {
        this.questions.push(q);
        return this.answer;
    }
    stream(chunk: string): void {
        this.streamed += chunk;
    }
    out(text: string): void {
        this.lines.push(text);
    }
    err(text: string): void {
        this.errors.push(text);
    }
    get text(): string {
        return [...this.lines, ...this.errors].join("\n");
    }
}

/** Reporting that records notifications and written files; time and commit are fixed. */
export class FakeReporting implements Reporting {
    readonly events: DeployEvent[] = [];
    readonly files: Record<string, string> = {};
    readonly commit = "feedbee";
    readonly notifier = { send: async (e: DeployEvent) => void this.events.push(e) };
    now(): string {
        return "2025-01-01T12:00:00.000Z";
    }
    writeFile(file: string, text: string): void {
        this.files[file] = text;
    }
}
