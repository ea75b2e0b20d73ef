/**
 * The release artifact's file name: the build writes it, the package registry stores it under
 * `<version>/<name>`, and the release helper derives the URL it writes into a stack file from
 * it. One place, so the three can never disagree.
 */
export function artifactFileName(version: string): string {
    return `complinist-${version}.tar.gz`;
}
