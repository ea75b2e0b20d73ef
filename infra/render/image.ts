/** Image references as the host's engine lists them (pure: used by the schema and the host scripts). */

/**
 * An image reference split for the host's check: `repo` as the engine lists it in RepoDigests
 * (the tag dropped; Docker Hub's `docker.io/` and `library/` dropped, as Docker shows them) and
 * `digest` (`sha256:…`, undefined for a tag alone).
 */
export function imageDigestParts(ref: string): { readonly repo: string; readonly digest: string | undefined } {
    const at = ref.indexOf("@");
    const digest = at >= 0 ? ref.slice(at + 1) : undefined;
    let repo = at >= 0 ? ref.slice(0, at) : ref;
    const slash = repo.lastIndexOf("/");
    const colon = repo.lastIndexOf(":");
    if (colon > slash) repo = repo.slice(0, colon);
    repo = repo.replace(/^(docker\.io|index\.docker\.io)\//, "");
    if (!repo.includes("/") || /^library\/[^/]+$/.test(repo)) repo = repo.replace(/^library\//, "");
    return { repo, digest };
}
