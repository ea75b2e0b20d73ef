import type { ExecOptions, ExecResult, Transport } from "../../../infra/transport";

/** A host that answers scripts from a function, recording each; uploading is never expected of the operator tools. */
export class FakeTransport implements Transport {
    readonly root = "";
    readonly systemd = true;
    readonly scripts: string[] = [];
    constructor(
        readonly host: string,
        private readonly answer: (script: string, options?: ExecOptions) => ExecResult | Promise<ExecResult>,
    ) {}
    async exec(script: string, options?: ExecOptions): Promise<ExecResult> {
        this.scripts.push(script);
        return this.answer(script, options);
    }
    upload(): never {
        throw new Error(`unexpected upload to ${this.host}: the operator tools only read`);
    }
}
