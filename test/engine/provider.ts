// A client for Pulumi's own Node.js dynamic provider server
// (node_modules/@pulumi/pulumi/cmd/dynamic-provider), started as the engine starts it: one process
// per deployment, the engine address as its only argument, the full stack config in PULUMI_CONFIG,
// the project in PULUMI_NODEJS_PROJECT / PULUMI_PROJECT; it prints its port on the first stdout line.
import { ChildProcess, spawn } from "child_process";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import type { PropertyMap } from "./props";
import type { ProviderLine, ProviderServerOptions } from "./types";

/** An error from a provider call, carrying the provider's message as the engine would show it. */
export class ProviderCallError extends Error {
    constructor(
        message: string,
        readonly code: number | undefined,
    ) {
        super(message);
        this.name = "ProviderCallError";
    }
}

function toStruct(m: PropertyMap): structproto.Struct {
    return structproto.Struct.fromJavaScript(m as { [k: string]: structproto.JavaScriptValue });
}

export function fromStruct(s: structproto.Struct | undefined): PropertyMap {
    return (s?.toJavaScript() ?? {}) as PropertyMap;
}

/** The fields of a resource request, named as the engine's RPCs name them. */
interface ResourceFields {
    id: string;
    olds: PropertyMap;
    news: PropertyMap;
    properties: PropertyMap;
    oldInputs: PropertyMap;
    inputs: PropertyMap;
    ignoreChanges: readonly string[];
}

const SETTERS = {
    id: "setId",
    olds: "setOlds",
    news: "setNews",
    properties: "setProperties",
    oldInputs: "setOldInputs",
    inputs: "setInputs",
    ignoreChanges: "setIgnorechangesList",
} as const;

type Wire<K extends keyof ResourceFields> = K extends "id" ? string : K extends "ignoreChanges" ? string[] : structproto.Struct;

/** A generated request with the setters for the fields K (the type rejects a field the request lacks). */
type ResourceRequest<K extends keyof ResourceFields> = {
    setUrn(v: string): unknown;
    setName(v: string): unknown;
    setType(v: string): unknown;
} & { [P in K as (typeof SETTERS)[P]]: (v: Wire<P>) => unknown };

/**
 * Fills a Check/Diff/Create/Read/Update/Delete request as the engine does: the URN with the name
 * and type it carries, property maps as Structs (wire form, secrets wrapped), then the given fields.
 */
function resourceRequest<K extends keyof ResourceFields, R extends ResourceRequest<K>>(req: R, urn: string, fields: Pick<ResourceFields, K>): R {
    req.setUrn(urn);
    req.setName(nameOf(urn));
    req.setType(typeOf(urn));
    for (const [key, value] of Object.entries(fields) as Array<[K, ResourceFields[K]]>) {
        const wire = key === "id" ? value : key === "ignoreChanges" ? [...(value as readonly string[])] : toStruct(value as PropertyMap);
        (req as unknown as { [setter: string]: (v: unknown) => unknown })[SETTERS[key]](wire);
    }
    return req;
}

export class ProviderServer {
    readonly lines: ProviderLine[] = [];
    private proc?: ChildProcess | undefined;
    private client?: provrpc.ResourceProviderClient | undefined;
    private started = 0;
    private exitInfo?: string | undefined;
    private killTimer?: NodeJS.Timeout | undefined;
    /** Settles once the process has exited and both its output streams are drained. */
    private closed: Promise<void> = Promise.resolve();

    private constructor(private readonly opts: ProviderServerOptions) {}

    static async start(opts: ProviderServerOptions): Promise<ProviderServer> {
        const s = new ProviderServer(opts);
        await s.spawn();
        await s.configure();
        return s;
    }

    get exited(): string | undefined {
        return this.exitInfo;
    }

    private spawn(): Promise<void> {
        const entry = path.join(this.opts.repoRoot, "node_modules", "@pulumi", "pulumi", "cmd", "dynamic-provider");
        const env: { [key: string]: string | undefined } = {
            ...process.env,
            ...this.opts.env,
            PULUMI_CONFIG: JSON.stringify(this.opts.config),
            PULUMI_CONFIG_SECRET_KEYS: JSON.stringify(this.opts.secretKeys),
            PULUMI_NODEJS_PROJECT: this.opts.project,
            PULUMI_PROJECT: this.opts.project,
        };
        // The engine does not hand its monitor/engine env to plugins; keep the test runner's out too.
        delete env.PULUMI_NODEJS_ENGINE;
        delete env.PULUMI_NODEJS_MONITOR;
        this.started = Date.now();
        const proc = spawn(process.execPath, [entry, "127.0.0.1:1" /* engine address: unused by this server */], {
            cwd: this.opts.repoRoot,
            env,
            stdio: ["ignore", "pipe", "pipe"],
        });
        this.proc = proc;
        this.closed = new Promise<void>((resolve) => proc.once("close", () => resolve()));
        const kill = this.opts.kill;
        if (kill?.afterMs !== undefined) {
            this.killTimer = setTimeout(() => this.kill(), kill.afterMs);
        }
        return new Promise<void>((resolve, reject) => {
            let port: number | undefined;
            const onLine = (stream: "stdout" | "stderr", line: string): void => {
                if (stream === "stdout" && port === undefined) {
                    const p = Number(line.trim());
                    if (Number.isInteger(p) && p > 0) {
                        port = p;
                        this.client = new provrpc.ResourceProviderClient(`127.0.0.1:${p}`, grpc.credentials.createInsecure());
                        resolve();
                        return;
                    }
                }
                this.lines.push({ stream, line, at: Date.now() - this.started });
                const trigger = kill?.onLine;
                if (trigger !== undefined && (typeof trigger === "string" ? line.includes(trigger) : typeof trigger === "function" ? trigger(line) : trigger.test(line))) {
                    if (kill?.delayMs) this.killTimer = setTimeout(() => this.kill(), kill.delayMs);
                    else this.kill();
                }
            };
            for (const stream of ["stdout", "stderr"] as const) {
                let buf = "";
                proc[stream]?.setEncoding("utf8");
                proc[stream]?.on("data", (chunk: string) => {
                    buf += chunk;
                    let i: number;
                    while ((i = buf.indexOf("\n")) >= 0) {
                        onLine(stream, buf.slice(0, i));
                        buf = buf.slice(i + 1);
                    }
                });
                proc[stream]?.on("end", () => {
                    if (buf) {
                        onLine(stream, buf);
                        buf = "";
                    }
                });
            }
            proc.on("error", reject);
            proc.on("exit", (code, signal) => {
                this.exitInfo = signal ? `killed by ${signal}` : `exited with code ${code}`;
                if (this.killTimer) {
                    clearTimeout(this.killTimer);
                }
                if (port === undefined) {
                    reject(new Error(`dynamic provider server ${this.exitInfo} before printing its port: ${this.lines.map((l) => l.line).join("\n")}`));
                }
            });
        });
    }

    /** SIGKILL the provider process now (crash simulation). */
    kill(): void {
        if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
            this.proc.kill("SIGKILL");
        }
    }

    async close(): Promise<void> {
        this.client?.close();
        const proc = this.proc;
        if (proc && proc.exitCode === null && proc.signalCode === null) {
            proc.kill("SIGTERM");
        }
        // "close", not "exit": a line written during the last call may still sit in the pipe.
        await this.closed;
        if (this.killTimer) {
            clearTimeout(this.killTimer);
        }
    }

    private unary<Req, Res>(method: string, req: Req): Promise<Res> {
        const client = this.client;
        if (!client) {
            return Promise.reject(new Error("dynamic provider server is not running"));
        }
        type Unary = (r: Req, md: grpc.Metadata, o: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: Res) => void) => void;
        const fn = (client as unknown as { [m: string]: Unary })[method].bind(client);
        return new Promise<Res>((resolve, reject) => {
            fn(req, new grpc.Metadata(), { deadline: Date.now() + this.opts.callTimeoutMs }, (err, res) => {
                if (err) {
                    // Give the exit event a moment to land so a crash is reported as such.
                    setTimeout(() => {
                        const crashed = this.exitInfo ? ` (dynamic provider process ${this.exitInfo})` : "";
                        reject(new ProviderCallError(`${err.details || err.message}${crashed}`, err.code));
                    }, 50);
                } else {
                    resolve(res);
                }
            });
        });
    }

    /** Configure as the engine does for the default `pulumi-nodejs` provider: the whole stack config. */
    private async configure(): Promise<void> {
        const req = new provproto.ConfigureRequest();
        const args: PropertyMap = {};
        const vars = req.getVariablesMap();
        for (const [k, v] of Object.entries(this.opts.config)) {
            args[k] = this.opts.secretKeys.includes(k) ? { "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", value: v } : v;
            vars.set(`pulumi-nodejs:config:${k}`, v);
        }
        req.setArgs(toStruct(args));
        req.setAcceptsecrets(true);
        req.setAcceptresources(true);
        req.setSendsOldInputs(true);
        req.setSendsOldInputsToDelete(true);
        await this.unary<provproto.ConfigureRequest, provproto.ConfigureResponse>("configure", req);
    }

    async check(urn: string, olds: PropertyMap, news: PropertyMap): Promise<{ inputs: PropertyMap; failures: { property: string; reason: string }[] }> {
        const req = resourceRequest(new provproto.CheckRequest(), urn, { olds, news });
        const res = await this.unary<provproto.CheckRequest, provproto.CheckResponse>("check", req);
        return {
            inputs: fromStruct(res.getInputs()),
            failures: res.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() })),
        };
    }

    async diff(
        urn: string,
        id: string,
        oldOutputs: PropertyMap,
        news: PropertyMap,
        oldInputs: PropertyMap,
        ignoreChanges: readonly string[],
    ): Promise<{ changes: "unknown" | "none" | "some"; replaces: string[]; diffs: string[]; deleteBeforeReplace: boolean }> {
        const req = resourceRequest(new provproto.DiffRequest(), urn, { id, olds: oldOutputs, news, oldInputs, ignoreChanges });
        const res = await this.unary<provproto.DiffRequest, provproto.DiffResponse>("diff", req);
        const c = res.getChanges();
        const D = provproto.DiffResponse.DiffChanges;
        return {
            changes: c === D.DIFF_SOME ? "some" : c === D.DIFF_NONE ? "none" : "unknown",
            replaces: res.getReplacesList(),
            diffs: res.getDiffsList(),
            deleteBeforeReplace: res.getDeletebeforereplace(),
        };
    }

    async create(urn: string, props: PropertyMap): Promise<{ id: string; outputs: PropertyMap }> {
        const req = resourceRequest(new provproto.CreateRequest(), urn, { properties: props });
        const res = await this.unary<provproto.CreateRequest, provproto.CreateResponse>("create", req);
        if (!res.getId()) {
            throw new ProviderCallError(`plugin for package 'pulumi-nodejs' returned empty resource.ID from create '${urn}'`, undefined);
        }
        return { id: res.getId(), outputs: fromStruct(res.getProperties()) };
    }

    async read(urn: string, id: string, outputs: PropertyMap, inputs: PropertyMap): Promise<{ id: string; outputs: PropertyMap; inputs?: PropertyMap | undefined }> {
        const req = resourceRequest(new provproto.ReadRequest(), urn, { id, properties: outputs, inputs });
        const res = await this.unary<provproto.ReadRequest, provproto.ReadResponse>("read", req);
        return { id: res.getId(), outputs: fromStruct(res.getProperties()), inputs: res.hasInputs() ? fromStruct(res.getInputs()) : undefined };
    }

    async update(urn: string, id: string, oldOutputs: PropertyMap, news: PropertyMap, oldInputs: PropertyMap, ignoreChanges: readonly string[]): Promise<PropertyMap> {
        const req = resourceRequest(new provproto.UpdateRequest(), urn, { id, olds: oldOutputs, news, oldInputs, ignoreChanges });
        const res = await this.unary<provproto.UpdateRequest, provproto.UpdateResponse>("update", req);
        return fromStruct(res.getProperties());
    }

    async delete(urn: string, id: string, outputs: PropertyMap, inputs: PropertyMap): Promise<void> {
        const req = resourceRequest(new provproto.DeleteRequest(), urn, { id, properties: outputs, oldInputs: inputs });
        await this.unary<provproto.DeleteRequest, unknown>("delete", req);
    }
}

export function nameOf(urn: string): string {
    return urn.split("::").slice(3).join("::");
}

export function typeOf(urn: string): string {
    return (urn.split("::")[2] ?? "").split("$").pop() ?? "";
}

// Moved to the program tests' mocks, which outlive this engine; re-exported for driver.ts until it goes.
export { isDynamicType } from "../program/mocks/wire";
