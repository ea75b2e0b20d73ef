// The process that runs the real program (index.ts) once under Pulumi's mocks, started by evaluate.ts
// as `node -r ts-node/register/transpile-only child.ts <job.json>`. A fresh process per evaluation
// because the SDK's runtime state is global: one program, one stack, once. The program tests use
// this rather than the Pulumi CLI because it is fast and needs no engine, backend or state; operator
// flows (preview, up, refresh, destroy) go through the real CLI in test/e2e.
//
// It is pulumi.runtime.setMocks with a recording monitor: Pulumi's Mocks interface sees only type,
// name and inputs, while the tests assert on what the engine would receive (parent, dependencies,
// protect, secrets in wire form ...). Config comes in through PULUMI_CONFIG /
// PULUMI_CONFIG_SECRET_KEYS exactly as the language host passes it. Writes an EvalResult to
// job.resultFile.
import * as crypto from "crypto";
import * as fs from "fs";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as resproto from "@pulumi/pulumi/proto/resource_pb";
import { MockMonitor, Mocks, MockCallArgs, MockResourceArgs, MockResourceResult } from "@pulumi/pulumi/runtime/mocks";
import * as settings from "@pulumi/pulumi/runtime/settings";
import { runInPulumiStack } from "@pulumi/pulumi/runtime/stack";
import { errorMessage } from "../../../stacks/errors";
import type { CapturedResource, EvalJob, EvalResult } from "./types";
import { isDynamicType, secret, PropertyMap } from "./wire";

type Callback = (err: unknown, response: unknown) => void;

/** Minimal view of the generated RegisterResourceRequest / ReadResourceRequest we read from. */
interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getCustom(): boolean;
    getObject(): structproto.Struct | undefined;
    hasProtect(): boolean;
    getProtect(): boolean | undefined;
    getDependenciesList(): string[];
    getPropertydependenciesMap(): { forEach(cb: (v: { getUrnsList(): string[] }, k: string) => void): void };
    getDeletebeforereplace(): boolean;
    getIgnorechangesList(): string[];
    getReplaceonchangesList(): string[];
    getAdditionalsecretoutputsList(): string[];
    hasRetainondelete(): boolean;
    getRetainondelete(): boolean | undefined;
    getProvider(): string;
}
interface ReadRequest {
    getId(): string;
    getType(): string;
    getName(): string;
    getParent(): string;
    getProperties(): structproto.Struct | undefined;
    getDependenciesList(): string[];
    getProvider(): string;
}
interface OutputsRequest {
    getUrn(): string;
    getOutputs(): structproto.Struct | undefined;
}

/** Outputs a dynamic provider's create makes and the program uses: GeneratedSecret's value (secret, as the engine keeps it). */
function createdOutputs(rec: CapturedResource): PropertyMap {
    if (rec.type !== "pulumi-nodejs:dynamic/complinist:GeneratedSecret") return {};
    const length = typeof rec.inputs.length === "number" ? rec.inputs.length : 48;
    return { value: secret(crypto.createHash("sha256").update(rec.urn).digest("hex").slice(0, length)) };
}

class RecordingMonitor extends MockMonitor {
    readonly captured: CapturedResource[] = [];
    stackOutputs: PropertyMap = {};
    private stackUrn = "";

    constructor(
        mocks: Mocks,
        private readonly job: EvalJob,
    ) {
        super(mocks);
    }

    private urnOf(parent: string, type: string, name: string): string {
        let qualified = type;
        if (parent) {
            const parentType = parent.split("::")[2].split("$").pop();
            qualified = `${parentType}$${type}`;
        }
        return `urn:pulumi:${this.job.stack}::${this.job.project}::${qualified}::${name}`;
    }

    private answer(rec: CapturedResource): { id: string; state: PropertyMap } {
        if (!rec.custom) {
            return { id: "", state: {} };
        }
        const prior = this.job.prior[rec.urn];
        if (prior) {
            return { id: prior.id, state: prior.outputs };
        }
        if (isDynamicType(rec.type)) {
            // Not created yet: the engine hands back the inputs (the dynamic provider has no preview),
            // plus what a create makes that the program reads (the generated secret, derived from the URN).
            return { id: "", state: { ...rec.inputs, ...createdOutputs(rec) } };
        }
        // The program has no other custom resources; a new one gets its inputs back, as a dynamic one does.
        const state = rec.inputs;
        const id = crypto.createHash("sha256").update(rec.urn).digest("hex").slice(0, 12);
        return { id: `${rec.name}-${id}`, state };
    }

    override async registerResource(req: RegisterRequest, callback: Callback): Promise<void> {
        try {
            const type = req.getType();
            const name = req.getName();
            const parent = req.getParent();
            const urn = this.urnOf(parent, type, name);
            const propertyDependencies: { [key: string]: string[] } = {};
            req.getPropertydependenciesMap().forEach((v, k) => {
                propertyDependencies[k] = v.getUrnsList();
            });
            const rec: CapturedResource = {
                type,
                name,
                urn,
                custom: req.getCustom(),
                external: false,
                parent,
                dependencies: req.getDependenciesList(),
                propertyDependencies,
                inputs: (req.getObject()?.toJavaScript() ?? {}) as PropertyMap,
                protect: req.hasProtect() ? req.getProtect() === true : false,
                deleteBeforeReplace: req.getDeletebeforereplace(),
                ignoreChanges: req.getIgnorechangesList(),
                replaceOnChanges: req.getReplaceonchangesList(),
                additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
                retainOnDelete: req.hasRetainondelete() ? req.getRetainondelete() === true : false,
                provider: req.getProvider(),
                mockId: "",
                mockState: {},
            };
            if (type === "pulumi:pulumi:Stack") {
                this.stackUrn = urn;
            }
            const { id, state } = this.answer(rec);
            rec.mockId = id;
            rec.mockState = state;
            this.captured.push(rec);
            this.resources.set(urn, { urn, id, state });
            const resp = new resproto.RegisterResourceResponse();
            resp.setUrn(urn);
            resp.setId(id);
            resp.setObject(structproto.Struct.fromJavaScript(state as { [k: string]: structproto.JavaScriptValue }));
            callback(null, resp);
        } catch (err) {
            callback(err, undefined);
        }
    }

    /** Only StackReferences are read (the promotion gate); any other read is a test that forgot to say so. */
    override async readResource(req: ReadRequest, callback: Callback): Promise<void> {
        try {
            const type = req.getType();
            const name = req.getName();
            const urn = this.urnOf(req.getParent(), type, name);
            if (type !== "pulumi:pulumi:StackReference") {
                throw new Error(`program mocks: unexpected read of ${type} "${req.getId()}"`);
            }
            const ref = this.job.stackReferences[req.getId()];
            if (!ref) {
                throw new Error(`program mocks: no outputs configured for StackReference "${req.getId()}" (pass stackReferences)`);
            }
            const secretNames = ref.secretOutputNames ?? [];
            const outputs: PropertyMap = {};
            for (const [k, v] of Object.entries(ref.outputs)) {
                outputs[k] = secretNames.includes(k) ? secret(v) : v;
            }
            const state: PropertyMap = { name: req.getId(), outputs, secretOutputNames: secretNames };
            this.captured.push({
                type,
                name,
                urn,
                custom: true,
                external: true,
                parent: req.getParent(),
                dependencies: req.getDependenciesList(),
                propertyDependencies: {},
                inputs: (req.getProperties()?.toJavaScript() ?? {}) as PropertyMap,
                protect: false,
                deleteBeforeReplace: false,
                ignoreChanges: [],
                replaceOnChanges: [],
                additionalSecretOutputs: [],
                retainOnDelete: false,
                provider: req.getProvider(),
                mockId: req.getId(),
                mockState: state,
            });
            this.resources.set(urn, { urn, id: req.getId(), state });
            const resp = new resproto.ReadResourceResponse();
            resp.setUrn(urn);
            resp.setProperties(structproto.Struct.fromJavaScript(state as { [k: string]: structproto.JavaScriptValue }));
            callback(null, resp);
        } catch (err) {
            callback(err, undefined);
        }
    }

    override registerResourceOutputs(req: OutputsRequest, callback: Callback): void {
        if (req.getUrn() === this.stackUrn) {
            this.stackOutputs = (req.getOutputs()?.toJavaScript() ?? {}) as PropertyMap;
        }
        super.registerResourceOutputs(req, callback);
    }
}

interface RuntimeStore {
    supportsSecrets: boolean;
    supportsResourceReferences: boolean;
    supportsOutputValues: boolean;
    supportsDeletedWith: boolean;
    supportsAliasSpecs: boolean;
    supportsTransforms: boolean;
    supportsInvokeTransforms: boolean;
}

async function main(): Promise<void> {
    const job = JSON.parse(fs.readFileSync(process.argv[2], "utf8")) as EvalJob;
    const errors: string[] = [];
    process.on("unhandledRejection", (e) => errors.push(errorMessage(e)));
    process.on("uncaughtException", (e) => errors.push(errorMessage(e)));

    // Registrations and reads go through RecordingMonitor; the program makes no invokes, so any is a surprise.
    const mocks: Mocks = {
        newResource(args: MockResourceArgs): MockResourceResult {
            throw new Error(`program mocks: unexpected mock newResource for ${args.type}`);
        },
        call(args: MockCallArgs): Record<string, unknown> {
            throw new Error(`program mocks: unexpected invoke ${args.token}`);
        },
    };
    const monitor = new RecordingMonitor(mocks, job);
    settings.setMockOptions(monitor, job.project, job.stack, job.preview);
    // setMockOptions resets the feature flags; enable them as setMocks does (all but outputValues).
    const { getStore } = require("@pulumi/pulumi/runtime/state") as { getStore(): RuntimeStore };
    const store = getStore();
    store.supportsSecrets = true;
    store.supportsResourceReferences = true;
    store.supportsOutputValues = false;
    store.supportsDeletedWith = true;
    store.supportsAliasSpecs = true;
    store.supportsTransforms = true;
    store.supportsInvokeTransforms = true;

    const timer = setTimeout(() => {
        errors.push(`program mocks: program did not finish within ${job.timeoutMs} ms`);
        finish();
    }, job.timeoutMs);
    let written = false;
    const finish = (): void => {
        if (written) {
            return;
        }
        written = true;
        clearTimeout(timer);
        const result: EvalResult = { resources: monitor.captured, outputs: monitor.stackOutputs };
        if (errors.length > 0) {
            result.error = errors.join("\n");
        }
        fs.writeFileSync(job.resultFile, JSON.stringify(result));
        process.exit(0);
    };

    try {
        await runInPulumiStack(async () => {
            // As the Node.js language host does: require the entry; call it if it exports a function.
            let exported = require(job.program) as unknown;
            const mod = exported as { __esModule?: boolean; default?: unknown };
            if (mod && mod.__esModule && typeof mod.default === "function") {
                exported = mod.default;
            }
            return typeof exported === "function" ? await (exported as () => unknown)() : exported;
        });
    } catch (e) {
        errors.push(errorMessage(e));
    }
    const { waitForRPCs } = settings as unknown as { waitForRPCs(): Promise<void> };
    try {
        await waitForRPCs();
    } catch (e) {
        errors.push(errorMessage(e));
    }
    // Let rejected registrations surface as unhandled rejections before writing the result.
    await new Promise((resolve) => setTimeout(resolve, 20));
    finish();
}

void main();
