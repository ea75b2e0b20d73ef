import { EngineDriver } from "./driver";
(async () => {
  const d = new EngineDriver({ stack: "dev" });
  const { config, encrypted } = d.stackFileConfig();
  console.log(encrypted, d.program, d.project);
  let t = Date.now();
  const p = await d.preview(config);
  console.log("preview", Date.now() - t, p.error, p.programLog.slice(0, 2000));
  console.log(p.steps.map(s => `${s.op} ${s.type} ${s.name} ${s.diffs}`).join("\n"));
  console.log(p.resources.filter(r => r.custom).map(r => `${r.type} ${r.name} deps=${r.dependencies.length} parent=${r.parent.split("::").pop()}`).join("\n"));
  console.log(p.providerLog.slice(0, 20));
})();
