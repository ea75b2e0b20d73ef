import * as assert from "assert";
import type * as pulumi from "@pulumi/pulumi";
import type { ResourceProvider } from "@pulumi/pulumi/dynamic";
import { guarded, safeError } from "../../../infra/providers/guard";
import { HOSTILE, inert } from "../ops/hostileText";

const EVIL = Object.values(HOSTILE).join("");

describe("guarded: a dynamic provider's errors are safe for the terminal Pulumi prints them to", () => {
    const failing = (message: string): pulumi.dynamic.ResourceProvider => ({
        create: async () => {
            throw Object.assign(new Error(message), { retryable: true });
        },
    });

    it("rethrows host text in an error with every line made inert, its line breaks and fields kept", async () => {
        const provider = guarded(failing(`host web-1: release 1.2.0 was not installed: ${EVIL}registry said \u202egnp.exe\nswitched back to 1.1.0`));
        await assert.rejects(provider.create({}), (e: Error & { retryable?: boolean }) => {
            assert.strictEqual(e.message, "host web-1: release 1.2.0 was not installed: registry said gnp.exe\nswitched back to 1.1.0");
            assert.ok(e.message.split("\n").every(inert));
            assert.ok((e.stack ?? "").split("\n").every(inert), "the stack Pulumi prints too");
            assert.strictEqual(e.retryable, true);
            return true;
        });
    });

    it("passes results and clean errors through unchanged, `this` bound to the provider", async () => {
        const provider: pulumi.dynamic.ResourceProvider & { id: string } = {
            id: "x",
            async create(this: { id: string }) {
                return { id: this.id, outs: { a: 1 } };
            },
        };
        assert.deepStrictEqual(await guarded(provider).create({}), { id: "x", outs: { a: 1 } });
        const clean = new Error("host web-1: the lock is held");
        assert.strictEqual(safeError(clean), clean);
        assert.strictEqual(safeError(`plain ${HOSTILE.csiClear}text`).message, "plain text");
    });

    it("one provider gets one wrapper, so Pulumi serializes its closure once per program, not once per resource", async () => {
        const provider: ResourceProvider = { async create() { return { id: "x", outs: {} }; } };
        assert.strictEqual(guarded(provider), guarded(provider));
        assert.notStrictEqual(guarded(provider), guarded({ ...provider }));
    });
});
