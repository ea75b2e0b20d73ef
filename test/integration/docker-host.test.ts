import * as assert from "assert";
import { loadImages } from "../../dev/images";
import { TestHost, useHosts } from "../../dev/hosts";

/**
 * A test host with its own Docker engine (docker-in-docker, `dockerEngine: true`): an image
 * from this machine's engine is loaded into it, run with its port published on the host's
 * 127.0.0.1, and the host itself reaches it there — what container mode needs from a host.
 */

/** Has python3; any image from this machine's engine would do. */
const IMAGE = "complinist-testhost:latest";
const PORT = 5001;

describe("test host with its own Docker engine", function () {
    this.timeout(180000);
    const hosts: TestHost[] = useHosts(1, { dockerEngine: true, names: ["dind-1"] });

    const sh = (cmd: string) => (hosts[0] as TestHost).run(cmd);

    it("runs a loaded image with -p 127.0.0.1:PORT:PORT and the host reaches it on its own 127.0.0.1", async function () {
        const h = hosts[0] as TestHost;
        await loadImages(h, [IMAGE]);
        assert.match(await sh(`docker image inspect --format '{{.Id}}' ${IMAGE}`), /^sha256:/);

        await sh(`docker run -d --name web -p 127.0.0.1:${PORT}:${PORT} ${IMAGE} python3 -m http.server ${PORT} --bind 0.0.0.0`);
        const deadline = Date.now() + 30000;
        let code = "";
        while (Date.now() < deadline) {
            const r = await h.exec(`curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:${PORT}/`);
            code = r.stdout.trim();
            if (code === "200") break;
            await new Promise((resolve) => setTimeout(resolve, 200));
        }
        assert.strictEqual(code, "200", `curl http://127.0.0.1:${PORT}/ on ${h.name} answered "${code}"; container log:\n${(await h.exec("docker logs web 2>&1")).stdout}`);
        // Published on the host's loopback only, by the inner engine's docker-proxy.
        assert.match(await sh(`ss -ltnpH 'sport = :${PORT}'`), new RegExp(`127\\.0\\.0\\.1:${PORT}\\b.*docker-proxy`));
    });
});
