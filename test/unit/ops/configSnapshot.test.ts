import * as assert from "assert";
import type { ConfigMap, ConfigValue } from "@pulumi/pulumi/automation";
import { lookUp, withConfigSnapshot } from "../../../ops/configSnapshot";

/** A stack whose config calls are counted (each is one CLI process on the real one). */
class CountingStack {
    readonly name = "prod";
    calls: string[] = [];
    config: ConfigMap = {
        "complinist:version": { value: "1.1.0", secret: false },
        "complinist:notify": { value: JSON.stringify({ webhookUrl: "https://hooks.example.com/x", extra: { n: 1 } }), secret: true },
    };
    async getConfig(key: string, path?: boolean): Promise<ConfigValue> {
        this.calls.push(`get ${key}${path ? " --path" : ""}`);
        const v = lookUp(this.config, key, path);
        if (v === undefined) throw new Error(`configuration key '${key}' not found`);
        return v;
    }
    async getAllConfig(): Promise<ConfigMap> {
        this.calls.push("getAll");
        return { ...this.config };
    }
    async setConfig(key: string, value: ConfigValue): Promise<void> {
        this.calls.push(`set ${key}`);
        this.config[key] = value;
    }
    async setAllConfig(config: ConfigMap): Promise<void> {
        this.calls.push("setAll");
        Object.assign(this.config, config);
    }
    async removeConfig(key: string): Promise<void> {
        this.calls.push(`rm ${key}`);
        delete this.config[key];
    }
    hello(): string {
        return `stack ${this.name}`;
    }
}

describe("config snapshot: a command's config reads cost one CLI process", () => {
    it("answers every read, path keys included, from one getAllConfig", async () => {
        const real = new CountingStack();
        const s = withConfigSnapshot(real);
        assert.deepStrictEqual(await s.getConfig("complinist:version"), { value: "1.1.0", secret: false });
        assert.deepStrictEqual(await s.getConfig("complinist:notify.webhookUrl", true), { value: "https://hooks.example.com/x", secret: true });
        assert.deepStrictEqual(await s.getConfig("complinist:notify.extra", true), { value: '{"n":1}', secret: true });
        await assert.rejects(s.getConfig("complinist:missing"), /configuration key 'complinist:missing' not found/);
        await assert.rejects(s.getConfig("complinist:notify.nope", true), /not found/);
        assert.deepStrictEqual(real.calls, ["getAll"]);
        assert.strictEqual(s.hello(), "stack prod", "other members are the stack's own");
        assert.strictEqual(s.name, "prod");
    });

    it("a write drops the snapshot: the next read sees the new value", async () => {
        const real = new CountingStack();
        const s = withConfigSnapshot(real);
        await s.getConfig("complinist:version");
        await s.setAllConfig({ "complinist:version": { value: "1.0.0" } });
        assert.strictEqual((await s.getConfig("complinist:version")).value, "1.0.0");
        await s.removeConfig("complinist:version");
        await assert.rejects(s.getConfig("complinist:version"));
        assert.deepStrictEqual(real.calls, ["getAll", "setAll", "getAll", "rm complinist:version", "getAll"]);
    });

    it("a path it does not parse goes to the CLI; a failed read is not kept", async () => {
        const real = new CountingStack();
        const s = withConfigSnapshot(real);
        await assert.rejects(s.getConfig("complinist:hosts[0].name", true));
        assert.deepStrictEqual(real.calls, ["get complinist:hosts[0].name --path"]);
        let fail = true;
        real.getAllConfig = async () => {
            real.calls.push("getAll");
            if (fail) throw new Error("backend unreachable");
            return { ...real.config };
        };
        await assert.rejects(s.getConfig("complinist:version"), /backend unreachable/);
        fail = false;
        assert.strictEqual((await s.getConfig("complinist:version")).value, "1.1.0");
    });
});
