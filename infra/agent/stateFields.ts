/**
 * Field checks for the agent's state answer (state.ts): each names the host and the field, as a
 * JSON path, of an answer that is not what the agent prints.
 */
export type Obj = Record<string, unknown>;

export const isObject = (x: unknown): x is Obj => typeof x === "object" && x !== null && !Array.isArray(x);

export function shown(x: unknown): string {
    const s = x === undefined ? "nothing" : JSON.stringify(x);
    return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

/** Field checks that name the host and the field (as a JSON path) of an answer that is not the agent's. */
export class Checker {
    constructor(private readonly host: string) {}

    fail(field: string, want: string, got: unknown): never {
        throw new Error(`host ${this.host}: the agent's state answer is not what the agent prints: ${field} should be ${want}, is ${shown(got)}`);
    }

    obj(o: Obj, k: string, at: string): Obj {
        const v = o[k];
        return isObject(v) ? v : this.fail(`${at}${k}`, "an object", v);
    }

    str(o: Obj, k: string, at: string): string {
        const v = o[k];
        return typeof v === "string" ? v : this.fail(`${at}${k}`, "a string", v);
    }

    optStr(o: Obj, k: string, at: string): void {
        if (o[k] !== undefined) this.str(o, k, at);
    }

    int(o: Obj, k: string, at: string): number {
        const v = o[k];
        return Number.isInteger(v) ? (v as number) : this.fail(`${at}${k}`, "a whole number", v);
    }

    num(o: Obj, k: string, at: string): number {
        const v = o[k];
        return typeof v === "number" && Number.isFinite(v) ? v : this.fail(`${at}${k}`, "a number", v);
    }

    bool(o: Obj, k: string, at: string): boolean {
        const v = o[k];
        return typeof v === "boolean" ? v : this.fail(`${at}${k}`, "true or false", v);
    }

    arr(o: Obj, k: string, at: string): unknown[] {
        const v = o[k];
        return Array.isArray(v) ? v : this.fail(`${at}${k}`, "an array", v);
    }

    strings(o: Obj, k: string, at: string): void {
        this.arr(o, k, at).forEach((x, i) => {
            if (typeof x !== "string") this.fail(`${at}${k}[${i}]`, "a string", x);
        });
    }

    objects(o: Obj, k: string, at: string, each: (x: Obj, at: string) => void): void {
        this.arr(o, k, at).forEach((x, i) => (isObject(x) ? each(x, `${at}${k}[${i}].`) : this.fail(`${at}${k}[${i}]`, "an object", x)));
    }

    container(o: Obj, k: string, at: string): void {
        if (o[k] === undefined) return;
        const c = this.obj(o, k, at);
        for (const f of ["state", "id", "image"]) this.str(c, f, `${at}${k}.`);
    }

    probe(o: Obj, k: string): void {
        if (o[k] === undefined) return;
        const p = this.obj(o, k, "");
        this.int(p, "code", `${k}.`);
        this.num(p, "seconds", `${k}.`);
        this.optStr(p, "error", `${k}.`);
        this.optStr(p, "body", `${k}.`);
    }
}
