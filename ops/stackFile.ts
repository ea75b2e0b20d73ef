import * as YAML from "yaml";

/**
 * A stack file (Pulumi.<stack>.yaml) edited the way a person would: values set or
 * removed under `config:`, every comment, the key order and `secure:` values kept.
 * The helpers write the stack files through this, so the change an operator commits
 * is exactly the one they printed.
 */
export class StackFile {
    private readonly doc: YAML.Document.Parsed;

    constructor(
        readonly text: string,
        readonly file: string,
    ) {
        this.doc = YAML.parseDocument(text);
        if (this.doc.errors.length > 0) throw new Error(`${file} is not valid YAML: ${this.doc.errors[0]?.message ?? ""}`);
        if (!YAML.isMap(this.doc.get("config"))) throw new Error(`${file} has no config: map (is it a Pulumi stack file?)`);
    }

    /** A plain value under `config:` (e.g. ["complinist:version"]), or undefined. */
    get(path: ReadonlyArray<string>): unknown {
        const node = this.doc.getIn(["config", ...path], true);
        return YAML.isNode(node) ? node.toJSON() : node;
    }

    set(path: ReadonlyArray<string>, value: unknown): void {
        this.doc.setIn(["config", ...path], this.doc.createNode(value));
    }

    /** Removes `value` from the list at `path`; the key goes when the list ends up empty. */
    removeFromList(path: ReadonlyArray<string>, value: string): void {
        const list = this.get(path);
        if (!Array.isArray(list) || !list.includes(value)) return;
        const rest = list.filter((v) => v !== value);
        if (rest.length === 0) this.doc.deleteIn(["config", ...path]);
        else this.set(path, rest);
    }

    /** No line folding: a long URL or host key stays on its line. */
    toString(): string {
        return this.doc.toString({ lineWidth: 0 });
    }
}
