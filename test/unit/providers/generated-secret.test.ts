import * as assert from "assert";
import { generatedSecretProvider, GeneratedSecretOutputs } from "../../../infra/providers/generatedSecret";

const p = generatedSecretProvider as Required<typeof generatedSecretProvider>;
const inputs = { length: 48, alphabet: "alphanumeric" as const };

describe("GeneratedSecret (the app's SECRET_KEY, made in create)", () => {
    it("creates a secret of the asked length from the alphanumeric alphabet, a different one each time", async () => {
        const a = (await p.create(inputs)).outs as GeneratedSecretOutputs;
        const b = (await p.create(inputs)).outs as GeneratedSecretOutputs;
        assert.match(a.value, /^[A-Za-z0-9]{48}$/);
        assert.notStrictEqual(a.value, b.value);
    });

    it("draws every character of the alphabet, with no bias towards its first ones", async () => {
        const counts = new Map<string, number>();
        for (let i = 0; i < 200; i++) for (const ch of ((await p.create({ ...inputs, length: 256 })).outs as GeneratedSecretOutputs).value) counts.set(ch, (counts.get(ch) ?? 0) + 1);
        assert.strictEqual(counts.size, 62);
        // 51,200 draws over 62 characters: about 826 each; modulo bias would give the first 8 about 1/31 more.
        const first = ["A", "B", "C", "D"].map((c) => counts.get(c) ?? 0);
        const last = ["6", "7", "8", "9"].map((c) => counts.get(c) ?? 0);
        assert.ok(Math.abs(first.reduce((x, y) => x + y) - last.reduce((x, y) => x + y)) < 400, `first ${first} last ${last}`);
    });

    it("is stable: an unchanged declaration is no change, and refresh keeps the value", async () => {
        const outs = (await p.create(inputs)).outs as GeneratedSecretOutputs;
        assert.deepStrictEqual(await p.diff("id", outs, inputs), { changes: false, replaces: [], deleteBeforeReplace: false });
        assert.deepStrictEqual((await p.read("id", outs)).props, outs);
    });

    it("a new length replaces it (shown in preview); nothing else changes it", async () => {
        const outs = (await p.create(inputs)).outs as GeneratedSecretOutputs;
        assert.deepStrictEqual((await p.diff("id", outs, { ...inputs, length: 64 })).replaces, ["length"]);
    });

    it("refuses a length outside 16–256 or another alphabet, naming the property", async () => {
        const r = await p.check(inputs, { length: 8, alphabet: "hex" as never });
        assert.deepStrictEqual(r.failures?.map((f) => f.property), ["length", "alphabet"]);
        assert.match(r.failures?.[0]?.reason ?? "", /16 to 256, got 8/);
    });
});
